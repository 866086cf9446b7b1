"""Media type and transfer syntax negotiation for WADO-RS (PS3.18 8.7).

The client's acceptable media ranges (Accept header, or the ``accept`` query
parameter, which takes precedence) are tried in order of preference; the first
that the archive can satisfy decides the answer: the stored bytes untouched, or
a decoded Explicit VR Little Endian rendition.  Nothing acceptable is a 406.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request

from dicomweb_archive import uids
from dicomweb_archive.errors import UnsupportedTransferSyntaxError
from dicomweb_archive.media import (
    MULTIPART_RELATED,
    MediaRange,
    parse_accept,
    parse_accept_parameter,
)

APPLICATION_DICOM = "application/dicom"
OCTET_STREAM = "application/octet-stream"
ZIP = "application/zip"

#: The transfer syntax a media type means when a request names none (PS3.18 8.7.3.5).
DEFAULT_TRANSFER_SYNTAX = {
    APPLICATION_DICOM: uids.ExplicitVRLittleEndian,
    OCTET_STREAM: uids.ExplicitVRLittleEndian,
    "image/jpeg": "1.2.840.10008.1.2.4.70",
    "image/jls": "1.2.840.10008.1.2.4.80",
    "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/jpx": "1.2.840.10008.1.2.4.92",
    "image/jphc": uids.HTJ2KLossless,
    "image/dicom-rle": uids.RLELossless,
}


def accepted(request: Request) -> list[MediaRange]:
    """The acceptable media ranges, most preferred first."""
    from_parameter = parse_accept_parameter(request.query_params.getlist("accept"))
    return from_parameter or parse_accept(request.headers.getlist("accept"))


@dataclass(frozen=True)
class Rendition:
    """How to answer: multipart or single part, and in which transfer syntax."""

    multipart: bool
    #: The part's (or the single body's) media type.
    media_type: str
    #: The transfer syntax of the answer; the stored one when untouched.
    transfer_syntax: str
    #: Whether the stored bytes are sent as they are.
    stored: bool


def _type_matches(wanted: str, actual: str) -> bool:
    kind, _, sub = wanted.partition("/")
    actual_kind, _, actual_sub = actual.partition("/")
    return kind in ("*", actual_kind) and sub in ("*", actual_sub, "")


def choose_pixels(
    ranges: Sequence[MediaRange],
    *,
    stored_syntax: str,
    stored_type: str,
    decodable: bool,
    single_part: bool,
) -> Rendition:
    """The rendition of frames or pixel bulk data to send.

    ``stored_type`` is the media type of the stored bytes (``image/jp2``,
    ``application/octet-stream`` …); ``decodable`` says whether they can be
    decoded into Explicit VR Little Endian; ``single_part`` whether the resource
    may be answered without a multipart envelope (one frame, one value).
    """
    as_stored = Rendition(True, stored_type, stored_syntax, True)
    native = stored_syntax == uids.ExplicitVRLittleEndian
    decoded = Rendition(True, OCTET_STREAM, uids.ExplicitVRLittleEndian, native)
    if not ranges:
        return as_stored
    for r in ranges:
        if r.media_type in ("*/*", "multipart/*"):
            return as_stored
        multipart = r.media_type == MULTIPART_RELATED
        if not multipart and not single_part:
            continue
        part = (r.part_type or OCTET_STREAM) if multipart else r.media_type
        if part == APPLICATION_DICOM and multipart:
            # dicomweb-client's default for frames: read as bulk data.
            part = OCTET_STREAM
        syntax = r.transfer_syntax
        if "*" in part:
            if not _type_matches(part, stored_type) and not decodable:
                continue
            if syntax in (None, "*", stored_syntax) and _type_matches(part, stored_type):
                return _shape(as_stored, multipart)
            if syntax == uids.ExplicitVRLittleEndian and (native or decodable):
                return _shape(decoded, multipart)
            continue
        if syntax == "*":
            if part in (stored_type, OCTET_STREAM):
                return _shape(as_stored, multipart)
            continue
        wanted = syntax or DEFAULT_TRANSFER_SYNTAX.get(part)
        if wanted == stored_syntax and part in (stored_type, OCTET_STREAM):
            return _shape(as_stored, multipart)
        if part == OCTET_STREAM and wanted == uids.ExplicitVRLittleEndian and decodable:
            return _shape(decoded, multipart)
    raise UnsupportedTransferSyntaxError(
        f"stored as {stored_type} in {stored_syntax}; acceptable: "
        + ", ".join(_describe(r) for r in ranges)
    )


def _shape(rendition: Rendition, multipart: bool) -> Rendition:
    if multipart:
        return rendition
    return Rendition(False, rendition.media_type, rendition.transfer_syntax, rendition.stored)


def _describe(r: MediaRange) -> str:
    params = "".join(f"; {k}={v}" for k, v in r.params.items())
    return f"{r.media_type}{params}"


@dataclass(frozen=True)
class InstanceRendition:
    """How to answer a retrieve of whole instances."""

    #: ``multipart`` (multipart/related application/dicom), ``single`` or ``zip``.
    form: str
    #: The wanted transfer syntax; ``*`` keeps each instance's own.
    transfer_syntax: str


def choose_instances(ranges: Sequence[MediaRange], *, single_instance: bool) -> InstanceRendition:
    """The form and transfer syntax of a study, series or instance retrieve."""
    if not ranges:
        return InstanceRendition("multipart", uids.ExplicitVRLittleEndian)
    for r in ranges:
        syntax = r.transfer_syntax
        if r.media_type in ("*/*", "multipart/*"):
            return InstanceRendition("multipart", syntax or uids.ExplicitVRLittleEndian)
        if r.media_type == MULTIPART_RELATED and r.part_type in (None, APPLICATION_DICOM):
            return InstanceRendition("multipart", syntax or uids.ExplicitVRLittleEndian)
        if r.media_type == APPLICATION_DICOM and single_instance:
            return InstanceRendition("single", syntax or uids.ExplicitVRLittleEndian)
        if r.media_type == ZIP:
            return InstanceRendition("zip", syntax or "*")
    raise UnsupportedTransferSyntaxError(
        'instances are available as multipart/related; type="application/dicom"'
        + ("" if not single_instance else " or application/dicom")
        + " or application/zip; acceptable: "
        + ", ".join(_describe(r) for r in ranges)
    )
