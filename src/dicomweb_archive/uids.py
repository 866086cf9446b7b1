"""Transfer syntaxes and the media types that carry their frames (PS3.18 8.7.3)."""

from __future__ import annotations

import re
from typing import Final

ImplicitVRLittleEndian: Final = "1.2.840.10008.1.2"
ExplicitVRLittleEndian: Final = "1.2.840.10008.1.2.1"
EncapsulatedUncompressedExplicitVRLittleEndian: Final = "1.2.840.10008.1.2.1.98"
DeflatedExplicitVRLittleEndian: Final = "1.2.840.10008.1.2.1.99"
ExplicitVRBigEndian: Final = "1.2.840.10008.1.2.2"
RLELossless: Final = "1.2.840.10008.1.2.5"
HTJ2KLossless: Final = "1.2.840.10008.1.2.4.201"
HTJ2KLosslessRPCL: Final = "1.2.840.10008.1.2.4.202"
HTJ2K: Final = "1.2.840.10008.1.2.4.203"

#: Transfer syntaxes whose Pixel Data is not encapsulated.
NATIVE_TRANSFER_SYNTAXES: Final = frozenset(
    {
        ImplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
    }
)

#: Video transfer syntaxes: the fragments form one stream, not frames.
VIDEO_TRANSFER_SYNTAXES: Final = frozenset(
    {
        "1.2.840.10008.1.2.4.100",
        "1.2.840.10008.1.2.4.100.1",
        "1.2.840.10008.1.2.4.101",
        "1.2.840.10008.1.2.4.101.1",
        "1.2.840.10008.1.2.4.102",
        "1.2.840.10008.1.2.4.102.1",
        "1.2.840.10008.1.2.4.103",
        "1.2.840.10008.1.2.4.103.1",
        "1.2.840.10008.1.2.4.104",
        "1.2.840.10008.1.2.4.104.1",
        "1.2.840.10008.1.2.4.105",
        "1.2.840.10008.1.2.4.105.1",
        "1.2.840.10008.1.2.4.106",
        "1.2.840.10008.1.2.4.106.1",
        "1.2.840.10008.1.2.4.107",
        "1.2.840.10008.1.2.4.108",
    }
)

VIDEO_MEDIA_TYPES: Final = {
    "1.2.840.10008.1.2.4.100": "video/mpeg",
    "1.2.840.10008.1.2.4.100.1": "video/mpeg",
    "1.2.840.10008.1.2.4.101": "video/mpeg",
    "1.2.840.10008.1.2.4.101.1": "video/mpeg",
    **{
        f"1.2.840.10008.1.2.4.{n}{suffix}": "video/mp4"
        for n in range(102, 107)
        for suffix in ("", ".1")
    },
    "1.2.840.10008.1.2.4.107": "video/H265",
    "1.2.840.10008.1.2.4.108": "video/H265",
}

#: Cornerstone's private HTJ2K syntax: what it assumes for a bare ``image/jphc``.
CornerstoneHTJ2K: Final = "3.2.840.10008.1.2.4.96"

#: The media type of one frame in each transfer syntax, and whether the syntax is
#: the one that media type means when a request names none (PS3.18 Table 8.7.3-5).
#: The one table both ways: :func:`frame_media_type` and :data:`DEFAULT_TRANSFER_SYNTAX`.
_FRAME_MEDIA_TYPES: Final = {
    ExplicitVRLittleEndian: ("application/octet-stream", True),
    EncapsulatedUncompressedExplicitVRLittleEndian: ("application/octet-stream", False),
    "1.2.840.10008.1.2.4.50": ("image/jpeg", False),
    "1.2.840.10008.1.2.4.51": ("image/jpeg", False),
    "1.2.840.10008.1.2.4.57": ("image/jpeg", False),
    "1.2.840.10008.1.2.4.70": ("image/jpeg", True),
    "1.2.840.10008.1.2.4.80": ("image/jls", True),
    "1.2.840.10008.1.2.4.81": ("image/jls", False),
    "1.2.840.10008.1.2.4.90": ("image/jp2", True),
    "1.2.840.10008.1.2.4.91": ("image/jp2", False),
    "1.2.840.10008.1.2.4.92": ("image/jpx", True),
    "1.2.840.10008.1.2.4.93": ("image/jpx", False),
    HTJ2KLossless: ("image/jphc", True),
    HTJ2KLosslessRPCL: ("image/jphc", False),
    HTJ2K: ("image/jphc", False),
    "1.2.840.10008.1.2.4.110": ("image/jxl", False),
    "1.2.840.10008.1.2.4.111": ("image/jxl", False),
    "1.2.840.10008.1.2.4.112": ("image/jxl", False),
    RLELossless: ("image/dicom-rle", True),
    "1.2.840.10008.1.2.8.1": ("application/octet-stream", False),
}

#: Every transfer syntax an instance can arrive in and be archived: native,
#: each whose frames have a media type, and video.
ARCHIVED_TRANSFER_SYNTAXES: Final = frozenset(
    {*NATIVE_TRANSFER_SYNTAXES, *_FRAME_MEDIA_TYPES, *VIDEO_TRANSFER_SYNTAXES}
)

#: The transfer syntax a media type means when a request names none (PS3.18
#: 8.7.3.5); ``application/dicom`` instances default to Explicit VR Little Endian.
DEFAULT_TRANSFER_SYNTAX: Final = {
    "application/dicom": ExplicitVRLittleEndian,
    **{media_type: uid for uid, (media_type, default) in _FRAME_MEDIA_TYPES.items() if default},
}

#: The HTJ2K transfer syntaxes, Cornerstone's private one included.
HTJ2K_TRANSFER_SYNTAXES: Final = frozenset(
    {HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K, CornerstoneHTJ2K}
)

_UID_RE: Final = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_LENIENT_UID_RE: Final = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def frame_transfer_syntax(stored: str) -> str:
    """The transfer syntax frames are kept in, given the dataset's.

    Native data is always stored as little endian, so every native syntax maps
    to Explicit VR Little Endian; encapsulated syntaxes are kept as they are.
    """
    return ExplicitVRLittleEndian if stored in NATIVE_TRANSFER_SYNTAXES else stored


def is_known_transfer_syntax(uid: str) -> bool:
    """Whether ``uid`` names a transfer syntax this archive knows of."""
    return (
        uid in _FRAME_MEDIA_TYPES
        or uid in NATIVE_TRANSFER_SYNTAXES
        or uid in VIDEO_MEDIA_TYPES
        or uid == CornerstoneHTJ2K
    )


def frame_media_type(transfer_syntax_uid: str) -> str:
    """Media type of one frame in ``transfer_syntax_uid``.

    Unknown encapsulated syntaxes are labelled ``application/octet-stream``; the
    ``transfer-syntax`` parameter still names them exactly.
    """
    if transfer_syntax_uid in VIDEO_MEDIA_TYPES:
        return VIDEO_MEDIA_TYPES[transfer_syntax_uid]
    media_type, _ = _FRAME_MEDIA_TYPES.get(transfer_syntax_uid, ("application/octet-stream", False))
    return media_type


def is_valid_uid(value: str, *, strict: bool = False) -> bool:
    """Whether ``value`` can name a resource: digits and dots, at most 64 chars.

    The lenient form (the default) admits leading zeros in components, which
    real devices write; it still never admits anything that could escape a path.
    """
    if not value or len(value) > 64:
        return False
    pattern = _UID_RE if strict else _LENIENT_UID_RE
    return pattern.match(value) is not None
