"""WADO-RS: metadata, frames and bulk data straight from the archive's files."""

from __future__ import annotations

import gzip
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from dicomweb_archive import uids
from dicomweb_archive.errors import (
    InvalidInputError,
    ResourceNotFoundError,
    UnsupportedTransferSyntaxError,
)
from dicomweb_archive.media import (
    DICOM_JSON,
    MULTIPART_RELATED,
    MediaRange,
    parse_accept,
    parse_accept_parameter,
)
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.store.directory import Archive

#: The transfer syntax a media type means when a request names none (PS3.18 8.7.3).
_DEFAULT_TRANSFER_SYNTAX = {
    "application/octet-stream": uids.ExplicitVRLittleEndian,
    "image/jpeg": "1.2.840.10008.1.2.4.70",
    "image/jls": "1.2.840.10008.1.2.4.80",
    "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/jpx": "1.2.840.10008.1.2.4.92",
    "image/jphc": uids.HTJ2KLossless,
    "image/dicom-rle": uids.RLELossless,
}


def _uid(value: str) -> str:
    if not uids.is_valid_uid(value):
        raise InvalidInputError(f"{value!r} is not a valid UID")
    return value


def _accepted(request: Request) -> list[MediaRange]:
    from_parameter = parse_accept_parameter(request.query_params.getlist("accept"))
    return from_parameter or parse_accept(request.headers.getlist("accept"))


def _file(archive: Archive, relative: str) -> Path:
    path = archive.path(relative)
    if not path.is_file():
        raise ResourceNotFoundError(f"{relative} not found")
    return path


def metadata(archive: Archive, request: Request, relative: str) -> Response:
    ranges = _accepted(request)
    if ranges and not any(r.matches(DICOM_JSON) and not r.params for r in ranges):
        raise UnsupportedTransferSyntaxError("metadata is available as application/dicom+json only")
    body = _file(archive, relative).read_bytes()
    headers = {"Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        headers["Content-Encoding"] = "gzip"
    else:
        body = gzip.decompress(body)
    return Response(body, media_type=DICOM_JSON, headers=headers)


def _frame_acceptable(ranges: list[MediaRange], stored: str, media_type: str) -> bool:
    if not ranges:
        return True
    for r in ranges:
        if r.media_type == "*/*":
            return True
        if r.media_type != MULTIPART_RELATED:
            continue
        part = r.part_type or "application/octet-stream"
        if part == "application/dicom":
            # dicomweb-client's default Accept for frames; read as bulk data.
            part = "application/octet-stream"
        if "*" in part:
            # Any part type (dicomweb-client sends type="*/*"): the stored one will do.
            kind, _, sub = part.partition("/")
            stored_kind, _, stored_sub = media_type.partition("/")
            if (
                kind in ("*", stored_kind)
                and sub in ("*", stored_sub, "")
                and r.transfer_syntax in (None, "*", stored)
            ):
                return True
            continue
        wanted = r.transfer_syntax or _DEFAULT_TRANSFER_SYNTAX.get(part)
        if wanted == "*" or (wanted == stored and part in (media_type, "application/octet-stream")):
            return True
    return False


def _frame_numbers(text: str) -> list[int]:
    try:
        numbers = [int(n) for n in text.split(",")]
    except ValueError as exc:
        raise InvalidInputError(f"frame list {text!r} is not a list of numbers") from exc
    if not numbers or min(numbers) < 1:
        raise InvalidInputError("frame numbers start at 1")
    return numbers


def _stored_part(path: Path) -> tuple[dict[str, str], int]:
    with open(path, "rb") as handle:
        head = handle.read(1024)
    end = head.find(b"\r\n\r\n")
    headers, _ = multipart.unwrap(head[: end + 4] + multipart.TRAILER)
    return headers, end + 4


def frames(archive: Archive, request: Request) -> Response:
    p = request.path_params
    study, series, sop = _uid(p["study"]), _uid(p["series"]), _uid(p["instance"])
    numbers = _frame_numbers(p["frames"])
    files = [_file(archive, paths.frame_path(study, series, sop, n)) for n in numbers]
    part_headers, _ = _stored_part(files[0])
    content_type = part_headers["content-type"]
    media_type, _, rest = content_type.partition(";")
    stored = rest.partition("transfer-syntax=")[2].strip()
    if not _frame_acceptable(_accepted(request), stored, media_type.strip()):
        raise UnsupportedTransferSyntaxError(
            f"frames are stored as {content_type}; transcoding is not available"
        )
    outer = multipart.response_content_type(media_type.strip())
    if len(files) == 1:
        # The stored body itself: identical bytes on every request, ranges work.
        return FileResponse(files[0], media_type=outer)
    parts = []
    for path in files:
        body = path.read_bytes()
        parts.append(body[: len(body) - len(multipart.TRAILER)])
    return Response(b"\r\n".join(parts) + multipart.TRAILER, media_type=outer)


def bulkdata(archive: Archive, request: Request) -> Response:
    p = request.path_params
    study = _uid(p["study"])
    digest = f"{p['prefix']}{p['rest']}"
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ResourceNotFoundError("no such bulk data")
    path = _file(archive, paths.bulkdata_path(study, digest))
    outer = multipart.response_content_type("application/octet-stream")
    return FileResponse(path, media_type=outer)


def instance_metadata_path(request: Request) -> str:
    p = request.path_params
    return paths.instance_metadata(_uid(p["study"]), _uid(p["series"]), _uid(p["instance"]))
