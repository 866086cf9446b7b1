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
    DICOM,
    MULTIPART_RELATED,
    OCTET_STREAM,
    ZIP,
    MediaRange,
    parse_accept,
    parse_accept_parameter,
)


def accepted(request: Request) -> list[MediaRange]:
    """The acceptable media ranges, most preferred first."""
    from_parameter = parse_accept_parameter(request.query_params.getlist("accept"))
    return from_parameter or parse_accept(request.headers.getlist("accept"))


@dataclass(frozen=True)
class Stored:
    """One stored representation of the pixels: its media type and syntax."""

    media_type: str
    transfer_syntax: str


#: A stored syntax that satisfies a request for another (a constrained subset).
_SATISFIES = {
    uids.HTJ2KLossless: {uids.HTJ2KLossless, uids.HTJ2KLosslessRPCL},
    uids.CornerstoneHTJ2K: {uids.HTJ2KLosslessRPCL, uids.HTJ2K},
}


@dataclass(frozen=True)
class Rendition:
    """How to answer: multipart or single part, and in which transfer syntax."""

    multipart: bool
    #: The part's (or the single body's) media type.
    media_type: str
    #: The transfer syntax of the answer; the stored one when untouched.
    transfer_syntax: str
    #: Which stored representation is sent as it is; -1 when decoded.
    source: int
    #: A ``Warning`` header value the answer carries (a syntax replaced by the default).
    warning: str = ""

    @property
    def stored(self) -> bool:
        return self.source >= 0


def _type_matches(wanted: str, actual: str) -> bool:
    kind, _, sub = wanted.partition("/")
    actual_kind, _, actual_sub = actual.partition("/")
    return kind in ("*", actual_kind) and sub in ("*", actual_sub, "")


def _syntax_matches(wanted: str, stored: str) -> bool:
    return wanted == stored or stored in _SATISFIES.get(wanted, ())


def choose_pixels(
    ranges: Sequence[MediaRange],
    *,
    stored: Sequence[Stored],
    decodable: bool,
    single_part: bool,
) -> Rendition:
    """The rendition of frames or pixel bulk data to send.

    ``stored`` lists the stored representations, the preferred one first (the
    primary frames, or an alternate such as HTJ2K); ``decodable`` says whether
    the first can be decoded into Explicit VR Little Endian; ``single_part``
    whether the resource may be answered without a multipart envelope.
    """
    native = next(
        (i for i, s in enumerate(stored) if s.transfer_syntax == uids.ExplicitVRLittleEndian), -1
    )
    decoded = Rendition(True, OCTET_STREAM, uids.ExplicitVRLittleEndian, native)
    can_decode = decodable or native >= 0

    def as_stored(index: int) -> Rendition:
        s = stored[index]
        return Rendition(True, s.media_type, s.transfer_syntax, index)

    if not ranges:
        return as_stored(0)
    for r in ranges:
        if r.media_type in ("*/*", "multipart/*"):
            return as_stored(0)
        multipart = r.media_type == MULTIPART_RELATED
        if not multipart and not single_part:
            continue
        part = (r.part_type or OCTET_STREAM) if multipart else r.media_type
        if part == DICOM and multipart:
            # dicomweb-client's default for frames: read as bulk data.
            part = OCTET_STREAM
        syntax, warning = _known_syntax(r.transfer_syntax, part)
        for index, s in enumerate(stored):
            if "*" in part:
                fits = _type_matches(part, s.media_type) and (
                    syntax in (None, "*") or _syntax_matches(syntax, s.transfer_syntax)
                )
            elif syntax == "*":
                fits = part in (s.media_type, OCTET_STREAM)
            else:
                wanted = syntax or uids.DEFAULT_TRANSFER_SYNTAX.get(part)
                fits = (
                    wanted is not None
                    and _syntax_matches(wanted, s.transfer_syntax)
                    and part in (s.media_type, OCTET_STREAM)
                )
            if fits:
                return _shape(as_stored(index), multipart, warning)
        explicit = syntax or (None if "*" in part else uids.DEFAULT_TRANSFER_SYNTAX.get(part))
        if (
            explicit == uids.ExplicitVRLittleEndian
            and part in (OCTET_STREAM, "*/*", "application/*")
            and can_decode
        ):
            return _shape(decoded, multipart, warning)
    raise UnsupportedTransferSyntaxError(
        "available: " + "; or ".join(_available(stored, can_decode, single_part))
    )


def _available(stored: Sequence[Stored], can_decode: bool, single_part: bool) -> list[str]:
    """What a 406 offers instead: every representation there is, as a client asks for it."""
    kinds = [(s.media_type, s.transfer_syntax) for s in stored]
    if can_decode:
        kinds.append((OCTET_STREAM, uids.ExplicitVRLittleEndian))
    offers = [
        f'multipart/related; type="{kind}"; transfer-syntax={syntax}' for kind, syntax in kinds
    ]
    if single_part:
        offers += [f"{kind}; transfer-syntax={syntax}" for kind, syntax in kinds]
    return list(dict.fromkeys(offers))


def _shape(rendition: Rendition, multipart: bool, warning: str = "") -> Rendition:
    return Rendition(
        multipart and rendition.multipart,
        rendition.media_type,
        rendition.transfer_syntax,
        rendition.source,
        warning,
    )


def _known_syntax(syntax: str | None, part: str) -> tuple[str | None, str]:
    """The syntax asked for, or the media type's default in place of one unknown.

    A malformed or unknown UID with a media type that has a default is answered
    in that default (PS3.18 8.7.3.5 lets a server choose it), with a warning.
    """
    if syntax in (None, "*") or uids.is_known_transfer_syntax(syntax):
        return syntax, ""
    default = uids.DEFAULT_TRANSFER_SYNTAX.get(part)
    if default is None:
        return syntax, ""
    shown = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in syntax)[:80]
    return default, (
        f'299 dicomweb-archive "transfer-syntax {shown} is not a known transfer syntax; '
        f'{part} is answered in its default, {default}"'
    )


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
        if r.media_type == MULTIPART_RELATED and r.part_type in (None, DICOM):
            return InstanceRendition("multipart", syntax or uids.ExplicitVRLittleEndian)
        if r.media_type == DICOM and single_instance:
            return InstanceRendition("single", syntax or uids.ExplicitVRLittleEndian)
        if r.media_type == ZIP:
            # The same files as multipart: Explicit VR Little Endian unless a
            # syntax (or ``*``, the archive's own) is named (PS3.18 8.7.3.5).
            return InstanceRendition("zip", syntax or uids.ExplicitVRLittleEndian)
    raise UnsupportedTransferSyntaxError(
        'available: multipart/related; type="application/dicom"'
        + ("; or application/dicom" if single_instance else "")
        + "; or application/zip (each with transfer-syntax=* or a transfer syntax UID)"
    )
