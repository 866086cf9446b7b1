"""WADO-RS: metadata, frames and bulk data from the archive's stored bytes.

Stored bodies go out untouched (a byte slice of a file: ranges, ETag, HEAD);
frames asked for in Explicit VR Little Endian are decoded on the way.
"""

from __future__ import annotations

import gzip

from starlette.requests import Request
from starlette.responses import Response

from dicomweb_archive import uids
from dicomweb_archive.codec.decode import DECODERS, ImagePixel, decode_frame, native_bytes
from dicomweb_archive.errors import (
    InvalidInputError,
    ResourceNotFoundError,
    UnsupportedTransferSyntaxError,
)
from dicomweb_archive.media import DICOM_JSON
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.server.negotiation import OCTET_STREAM, Rendition, accepted, choose_pixels
from dicomweb_archive.server.responses import (
    SMALL,
    RangeResponse,
    entity_tag,
    not_modified,
    slice_tag,
)
from dicomweb_archive.store.reader import ArchiveReader
from dicomweb_archive.store.slices import Slice


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
    body = gzip.decompress(stored.read())
    return RangeResponse(request, body, DICOM_JSON, headers=headers, etag=etag)


def frame_numbers(text: str) -> list[int]:
    try:
        numbers = [int(n) for n in text.split(",")]
    except ValueError as exc:
        raise InvalidInputError(f"frame list {text!r} is not a list of numbers") from exc
    if not numbers or min(numbers) < 1:
        raise InvalidInputError("frame numbers start at 1")
    return numbers


def stored_part(stored: Slice, head: bytes | None = None) -> tuple[str, str, Slice]:
    """Media type, transfer syntax and payload of a stored single-part body."""
    if head is None:
        head = stored.part(0, min(stored.length, 1024)).read()
    end = head.find(b"\r\n\r\n")
    headers, _ = multipart.unwrap(head[: end + 4] + multipart.TRAILER)
    media_type, _, rest = headers["content-type"].partition(";")
    syntax = rest.partition("transfer-syntax=")[2].strip()
    payload = stored.part(end + 4, stored.length - len(multipart.TRAILER))
    return media_type.strip(), syntax, payload


def _instance(request: Request) -> tuple[str, str, str]:
    p = request.path_params
    return uid(p["study"]), uid(p["series"]), uid(p["instance"])


def frames(archive: ArchiveReader, request: Request) -> Response:
    instance = _instance(request)
    numbers = frame_numbers(request.path_params["frames"])
    stored = [archive.locate(paths.frame_path(*instance, n)) for n in numbers]
    # The usual request, one frame of a few hundred kilobytes, is read once, here
    # in the worker thread, instead of again while the answer is sent.
    body = stored[0].read() if len(stored) == 1 and stored[0].length <= SMALL else None
    media_type, syntax, payload = stored_part(stored[0], body[:1024] if body else None)
    rendition = choose_pixels(
        accepted(request),
        stored_syntax=syntax,
        stored_type=media_type,
        decodable=syntax in DECODERS,
        single_part=len(numbers) == 1,
    )
    if rendition.stored:
        if rendition.multipart and len(stored) == 1:
            # The stored body itself: identical bytes on every request, ranges work.
            outer = multipart.response_content_type(media_type)
            if body is not None:
                return RangeResponse(request, body, outer, etag=slice_tag(stored[0]))
            return RangeResponse(request, stored[0], outer)
        if not rendition.multipart:
            single = multipart.content_type(media_type, syntax)
            if body is not None:
                start = payload.offset - stored[0].offset
                data = body[start : start + payload.length]
                return RangeResponse(request, data, single, etag=slice_tag(payload))
            return RangeResponse(request, payload, single)
        parts = [(media_type, syntax, stored_part(s)[2].read()) for s in stored]
        return _multipart(request, parts, media_type)
    meta = _instance_metadata(archive, instance)
    image = ImagePixel.from_metadata(meta)
    payloads = [native_bytes(decode_frame(stored_part(s)[2].read(), syntax, image)) for s in stored]
    return _decoded(request, rendition, payloads, stored)


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
    p = request.path_params
    study = uid(p["study"])
    digest = f"{p['prefix']}{p['rest']}"
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ResourceNotFoundError("no such bulk data")
    stored = archive.locate(paths.bulkdata_path(study, digest))
    media_type, syntax, payload = stored_part(stored)
    rendition = choose_pixels(
        accepted(request),
        stored_syntax=syntax or uids.ExplicitVRLittleEndian,
        stored_type=media_type,
        decodable=False,
        single_part=True,
    )
    if rendition.multipart:
        return RangeResponse(request, stored, multipart.response_content_type(media_type))
    return RangeResponse(request, payload, media_type)


def instance_metadata_path(request: Request) -> str:
    return paths.instance_metadata(*_instance(request))
