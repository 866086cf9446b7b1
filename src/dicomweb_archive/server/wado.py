"""WADO-RS: metadata, frames and bulk data from the archive's stored bytes.

Stored bodies go out untouched (a byte slice of a file: ranges, ETag, HEAD);
frames asked for in Explicit VR Little Endian are decoded on the way.  The
functions here run on the event loop: the usual answer, one stored frame or
document in the page cache, is a stat and one read, cheaper than a hand-off to
a worker thread.  A read that would wait for the disk, decoding, cutting
codestreams and joining several frames go to a worker thread
(:class:`ThreadedResponse`).
"""

from __future__ import annotations

import contextlib
import gzip
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response

from dicomweb_archive import uids
from dicomweb_archive.codec import codestream
from dicomweb_archive.codec.decode import DECODERS, ImagePixel, decode_frame, native_bytes
from dicomweb_archive.errors import (
    InvalidInputError,
    ResourceNotFoundError,
    UnsupportedTransferSyntaxError,
)
from dicomweb_archive.media import DICOM_JSON, OCTET_STREAM, MediaRange
from dicomweb_archive.model import multipart, paths, transcoded
from dicomweb_archive.numerals import parse_unsigned
from dicomweb_archive.server.negotiation import (
    Rendition,
    Stored,
    accepted,
    choose_pixels,
)
from dicomweb_archive.server.responses import (
    SMALL,
    RangeResponse,
    ThreadedResponse,
    entity_tag,
    not_modified,
    slice_tag,
)
from dicomweb_archive.store.reader import ArchiveReader
from dicomweb_archive.store.slices import Slice

#: The end-of-codestream marker of JPEG 2000.
EOC = b"\xff\xd9"


class _Uncached(Exception):
    """A read on the event loop would wait for the disk: answer from a worker thread."""


def _read(stored: Slice, inline: bool) -> bytes | bytearray:
    """The bytes of ``stored``; with ``inline``, only from the page cache."""
    if not inline:
        return stored.read()
    data = stored.read_cached()
    if data is None:
        raise _Uncached(stored.path)
    return data


def uid(value: str) -> str:
    if not uids.is_valid_uid(value):
        raise InvalidInputError(f"{value!r} is not a valid UID")
    return value


def metadata(archive: ArchiveReader, request: Request, relative: str) -> Response:
    """A stored DICOM JSON document, gzip passed through when accepted."""
    ranges = accepted(request)
    if ranges and not any(r.matches(DICOM_JSON) and not r.params for r in ranges):
        raise UnsupportedTransferSyntaxError("metadata is available as application/dicom+json only")
    stored = archive.locate(relative)
    headers = {"Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        headers["Content-Encoding"] = "gzip"
        return RangeResponse(request, stored, DICOM_JSON, headers=headers)
    etag = entity_tag(stored.version, "identity")
    if not_modified(request, etag):
        return RangeResponse(request, b"", DICOM_JSON, headers=headers, etag=etag)
    return ThreadedResponse(
        lambda: RangeResponse(
            request, gzip.decompress(stored.read()), DICOM_JSON, headers=headers, etag=etag
        )
    )


def frame_numbers(text: str) -> list[int]:
    try:
        numbers = [parse_unsigned(n) for n in text.split(",")]
    except ValueError as exc:
        raise InvalidInputError(f"frame list {text!r} is not a list of numbers") from exc
    if not numbers or min(numbers) < 1:
        raise InvalidInputError("frame numbers start at 1")
    return numbers


def stored_part(
    stored: Slice, head: bytes | bytearray | None = None, inline: bool = False
) -> tuple[str, str, Slice]:
    """Media type, transfer syntax and payload of a stored single-part body."""
    if head is None:
        head = _read(stored.part(0, min(stored.length, 1024)), inline)
    end = head.find(b"\r\n\r\n")
    headers, _ = multipart.unwrap(bytes(head[: end + 4]) + multipart.TRAILER)
    media_type, _, rest = headers["content-type"].partition(";")
    syntax = rest.partition("transfer-syntax=")[2].strip()
    payload = stored.part(end + 4, stored.length - len(multipart.TRAILER))
    return media_type.strip(), syntax, payload


def _instance(request: Request) -> tuple[str, str, str]:
    p = request.path_params
    return uid(p["study"]), uid(p["series"]), uid(p["instance"])


#: ``framesPath`` names viewers use for alternate renditions (client-contract §6),
#: matched case-insensitively, and whether each one is a reduced image.
ALTERNATE_PATHS = {
    "htj2k": False,
    "lossy": False,
    "jls": False,
    "htj2kthumbnail": True,
    "jlsthumbnail": True,
}
#: Largest side of the image an alternate thumbnail path answers with.
THUMBNAIL_SIZE = 128


def _asks_for_htj2k(ranges: list[MediaRange]) -> bool:
    return any(
        "jphc" in (r.part_type or "") + r.media_type
        or r.transfer_syntax in uids.HTJ2K_TRANSFER_SYNTAXES
        for r in ranges
    )


def _reduction(request: Request, alternate: str | None) -> int | None:
    """The largest side asked for: ``resolution=W,H``, or a thumbnail path's."""
    text = request.query_params.get("resolution")
    if text:
        try:
            sizes = [parse_unsigned(v) for v in text.split(",")[:2]]
        except ValueError:
            raise InvalidInputError("resolution is width,height") from None
        if not sizes or min(sizes) < 1:
            raise InvalidInputError("resolution is width,height")
        return max(sizes)
    if alternate and ALTERNATE_PATHS[alternate]:
        return THUMBNAIL_SIZE
    return None


@dataclass
class _Frames:
    """One stored representation of the asked frames."""

    slices: list[Slice]
    media_type: str
    transfer_syntax: str
    #: The first frame's whole stored body when small enough to hold.
    body: bytes | bytearray | None
    payload: Slice

    @classmethod
    def load(cls, slices: list[Slice], inline: bool) -> _Frames:
        # The usual request, one frame of a few hundred kilobytes, is read once,
        # here, instead of again while the answer is sent.
        first = slices[0]
        body = _read(first, inline) if len(slices) == 1 and first.length <= SMALL else None
        media_type, syntax, payload = stored_part(first, body[:1024] if body else None, inline)
        return cls(slices, media_type, syntax, body, payload)

    def payloads(self) -> list[bytes]:
        if self.body is not None:
            start = self.payload.offset - self.slices[0].offset
            return [bytes(self.body[start : start + self.payload.length])]
        return [stored_part(s)[2].read() for s in self.slices]


def _alternate(
    archive: ArchiveReader, instance: tuple[str, str, str], numbers: list[int], inline: bool
) -> list[Slice] | None:
    """The HTJ2K alternate of the frames, when a finished transcoding recorded one."""
    stored = archive.locate(paths.instance_info(*instance))
    info = orjson.loads(gzip.decompress(_read(stored, inline)))
    record = info.get(transcoded.RECORD) or {}
    if record.get("mode") != transcoded.ALTERNATE:
        return None  # none, or primary frames staged there by an unfinished run
    if max(numbers) > int(record.get("numberOfFrames", 0)):
        return None
    try:
        return [archive.locate(paths.htj2k_frame_path(*instance, n)) for n in numbers]
    except ResourceNotFoundError:
        return None


def frames(archive: ArchiveReader, request: Request, alternate: str | None = None) -> Response:
    """Frames (``…/frames/1,2``) or an alternate ``framesPath`` (``…/htj2k/1``)."""
    numbers = frame_numbers(request.path_params["frames"])
    if len(numbers) == 1:
        with contextlib.suppress(_Uncached):
            return _frames(archive, request, numbers, alternate, inline=True)
    return ThreadedResponse(lambda: _frames(archive, request, numbers, alternate, inline=False))


def _frames(
    archive: ArchiveReader,
    request: Request,
    numbers: list[int],
    alternate: str | None,
    inline: bool,
) -> Response:
    instance = _instance(request)
    ranges = accepted(request)
    reduce_to = _reduction(request, alternate)
    sources = [
        _Frames.load([archive.locate(paths.frame_path(*instance, n)) for n in numbers], inline)
    ]
    if alternate or reduce_to or _asks_for_htj2k(ranges):
        found = _alternate(archive, instance, numbers, inline)
        if found is not None:
            # An alternate path prefers the alternate rendition; frames/ the primary.
            sources.insert(0 if alternate else 1, _Frames.load(found, inline))
    primary = sources[-1] if alternate and len(sources) > 1 else sources[0]
    rendition = choose_pixels(
        ranges,
        stored=[Stored(f.media_type, f.transfer_syntax) for f in sources],
        decodable=primary.transfer_syntax in DECODERS,
        single_part=len(numbers) == 1,
    )
    if not rendition.stored:

        def decoded() -> Response:
            image = ImagePixel.from_metadata(_instance_metadata(archive, instance))
            payloads = [
                native_bytes(decode_frame(p, primary.transfer_syntax, image))
                for p in primary.payloads()
            ]
            return _decoded(request, rendition, payloads, primary.slices)

        return ThreadedResponse(decoded)
    chosen = sources[rendition.source]
    if reduce_to and chosen.transfer_syntax in uids.HTJ2K_TRANSFER_SYNTAXES:
        return ThreadedResponse(lambda: _reduced(request, rendition, chosen, reduce_to))
    first = chosen.slices[0]
    if rendition.multipart and len(chosen.slices) == 1:
        # The stored body itself: identical bytes on every request, ranges work.
        outer = multipart.response_content_type(chosen.media_type)
        if chosen.body is not None:
            return RangeResponse(request, chosen.body, outer, etag=slice_tag(first))
        return RangeResponse(request, first, outer)
    if not rendition.multipart:
        single = multipart.content_type(chosen.media_type, chosen.transfer_syntax)
        if chosen.body is not None:
            [data] = chosen.payloads()
            return RangeResponse(request, data, single, etag=slice_tag(chosen.payload))
        return RangeResponse(request, chosen.payload, single)
    parts = [(chosen.media_type, chosen.transfer_syntax, p) for p in chosen.payloads()]
    return _multipart(request, parts, chosen.media_type)


def _reduced(request: Request, rendition: Rendition, chosen: _Frames, size: int) -> Response:
    """HTJ2K frames cut after the resolution level that fits ``size``.

    The resolution levels of an RPCL codestream written one tile-part each come
    in order, so the first tile-parts and an end-of-codestream marker are a
    valid codestream of a smaller image: no decoding, no re-encoding.
    """
    cut = []
    for data in chosen.payloads():
        try:
            parsed = codestream.parse(data)
        except Exception:
            cut.append(data)
            continue
        level = parsed.smallest_resolution_within(size)
        end = parsed.resolution_prefix(level if level is not None else 0)
        cut.append(data if end is None or end >= len(data) - 2 else data[:end] + EOC)
    etag = entity_tag(*(s.version for s in chosen.slices), f"resolution<={size}")
    if not rendition.multipart:
        content_type = multipart.content_type(chosen.media_type, chosen.transfer_syntax)
        return RangeResponse(request, cut[0], content_type, etag=etag)
    parts = [(chosen.media_type, chosen.transfer_syntax, data) for data in cut]
    return _multipart(request, parts, chosen.media_type, etag=etag)


def _instance_metadata(archive: ArchiveReader, instance: tuple[str, str, str]) -> dict[str, object]:
    [meta] = archive.read_json_gz(paths.instance_metadata(*instance))
    return dict(meta)


def _decoded(
    request: Request, rendition: Rendition, payloads: list[bytes], stored: list[Slice]
) -> Response:
    etag = entity_tag(*(f"{s.path}:{s.version}" for s in stored), rendition.transfer_syntax)
    if not rendition.multipart:
        content_type = multipart.content_type(OCTET_STREAM, rendition.transfer_syntax)
        return RangeResponse(request, payloads[0], content_type, etag=etag)
    parts = [(OCTET_STREAM, rendition.transfer_syntax, p) for p in payloads]
    return _multipart(request, parts, OCTET_STREAM, etag=etag)


def _multipart(
    request: Request, parts: list[tuple[str, str, bytes]], outer_type: str, etag: str | None = None
) -> Response:
    body = b"".join(
        multipart.header(multipart.content_type(media_type, syntax)) + payload + b"\r\n"
        for media_type, syntax, payload in parts
    )
    body = body[:-2] + multipart.TRAILER
    return RangeResponse(request, body, multipart.response_content_type(outer_type), etag=etag)


def bulkdata(archive: ArchiveReader, request: Request) -> Response:
    with contextlib.suppress(_Uncached):
        return _bulkdata(archive, request, inline=True)
    return ThreadedResponse(lambda: _bulkdata(archive, request, inline=False))


def _bulkdata(archive: ArchiveReader, request: Request, inline: bool) -> Response:
    p = request.path_params
    study = uid(p["study"])
    digest = f"{p['prefix']}{p['rest']}"
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ResourceNotFoundError("no such bulk data")
    stored = archive.locate(paths.bulkdata_path(study, digest))
    media_type, syntax, payload = stored_part(stored, inline=inline)
    rendition = choose_pixels(
        accepted(request),
        stored=[Stored(media_type, syntax or uids.ExplicitVRLittleEndian)],
        decodable=False,
        single_part=True,
    )
    if rendition.multipart:
        return RangeResponse(request, stored, multipart.response_content_type(media_type))
    return RangeResponse(request, payload, media_type)


def instance_metadata_path(request: Request) -> str:
    return paths.instance_metadata(*_instance(request))
