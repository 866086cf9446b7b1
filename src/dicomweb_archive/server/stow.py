"""STOW-RS: store instances posted to ``/studies`` or ``/studies/{study}``.

A request body is ``multipart/related; type="application/dicom"`` (one P10
instance per part) or a single ``application/dicom`` instance.  It is read as it
arrives, each part spooled to a file in the archive's work folder, so memory
stays bounded however large the parts; the upload size limit is enforced while
reading.  The parts are then converted in a worker thread along the converter's
own path (:func:`~dicomweb_archive.convert.instance.store_instance`: atomic and
idempotent), each on its own, so one bad part fails alone.  The touched studies'
documents and the QIDO-RS index are refreshed before the answer, so a search
right after a store finds the new instances.

The answer is the Store Instances Response Module (PS3.18 10.5.3) as DICOM
JSON, with 200 when every instance was stored, 202 when some failed and 409
when none was; a request that cannot be read at all gets 400, 401, 413 or 415
with a JSON error.  A failed part carries a FailureReason (PS3.4 Annex I) and,
in a ``Warning`` header, the reason in words.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import logging
import os
import tempfile
from dataclasses import dataclass
from typing import Any, BinaryIO

import anyio.to_thread
import orjson
import pydicom
from pydicom.uid import UID
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from dicomweb_archive import tags, uids
from dicomweb_archive.batch import failure_of
from dicomweb_archive.convert.converter import Converter
from dicomweb_archive.convert.instance import store_instance
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.errors import (
    ArchiveUnavailableError,
    DicomwebArchiveError,
    InvalidInputError,
    MalformedMultipartError,
    MalformedRequestError,
    NotAnInstanceError,
    NotDicomError,
    PayloadTooLargeError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
    UnsupportedTransferSyntaxError,
)
from dicomweb_archive.media import DICOM, DICOM_JSON, MULTIPART_RELATED, parse_media_range
from dicomweb_archive.model import paths
from dicomweb_archive.numerals import parse_unsigned
from dicomweb_archive.p10.reader import read_instance
from dicomweb_archive.server.multipart_parser import (
    MultipartParser,
    PartData,
    PartStart,
    check_boundary,
)
from dicomweb_archive.store.directory import Archive
from dicomweb_archive.store.manifest import ensure, read_options

logger = logging.getLogger(__name__)

#: Largest request body accepted unless told otherwise.
DEFAULT_MAX_UPLOAD_BYTES = 2 * 1024**3
#: Spooled payload is written to disk in pieces of this size, from a thread.
_FLUSH_BYTES = 1024 * 1024
#: Most failure reasons put in ``Warning`` headers.
_MAX_WARNINGS = 20

# FailureReason values (PS3.4 Annex I.2.2, PS3.18 Table I.2-1).
PROCESSING_FAILURE = 0x0110
SOP_CLASS_NOT_SUPPORTED = 0x0122
OUT_OF_RESOURCES = 0xA700
#: "Data Set does not match SOP Class"; used for an instance of another study
#: than the one the request names.
DATASET_MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122

# Attributes of the Store Instances Response Module.
_RETRIEVE_URL = tags.RetrieveURL
_FAILED_SOP_SEQUENCE = tags.FailedSOPSequence
_REFERENCED_SOP_SEQUENCE = tags.ReferencedSOPSequence
_REFERENCED_SOP_CLASS_UID = tags.ReferencedSOPClassUID
_REFERENCED_SOP_INSTANCE_UID = tags.ReferencedSOPInstanceUID
_FAILURE_REASON = tags.FailureReason


@dataclass
class _Part:
    """One posted instance, spooled to ``path``."""

    number: int
    path: str
    handle: BinaryIO | None
    #: The part's own ``Content-Type`` header, if it has one.
    content_type: str | None
    size: int = 0
    pending: bytearray | None = None

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.pending is None:
            self.pending = bytearray()
        self.pending += data
        if len(self.pending) >= _FLUSH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self.pending and self.handle is not None:
            data, self.pending = self.pending, None
            await anyio.to_thread.run_sync(self.handle.write, data)

    async def close(self) -> None:
        await self.flush()
        if self.handle is not None:
            handle, self.handle = self.handle, None
            await anyio.to_thread.run_sync(handle.close)

    def discard(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        with contextlib.suppress(OSError):
            os.unlink(self.path)


@dataclass
class _Outcome:
    """What became of one part."""

    number: int
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    failure: int | None = None
    reason: str | None = None

    def fail(self, code: int, reason: str) -> _Outcome:
        self.failure, self.reason = code, reason
        return self


def _boundary_of(content_type: str | None) -> str | None:
    """The boundary of a multipart body; ``None`` for a single-part instance."""
    if not content_type:
        raise UnsupportedMediaTypeError(
            'a Content-Type is required: multipart/related; type="application/dicom"'
        )
    parsed = parse_media_range(content_type)
    if parsed is None:
        raise UnsupportedMediaTypeError(f"{content_type!r} is not a media type")
    if parsed.media_type == DICOM:
        return None
    part_type = (parsed.part_type or DICOM).partition(";")[0].strip()
    if parsed.media_type != MULTIPART_RELATED or part_type != DICOM:
        what = f'{parsed.media_type}; type="{part_type}"' if parsed.params else parsed.media_type
        raise UnsupportedMediaTypeError(
            f"{what} is not supported; send multipart/related; "
            'type="application/dicom" or a single application/dicom instance'
        )
    boundary = parsed.params.get("boundary")
    if not boundary:
        raise MalformedRequestError("the multipart Content-Type has no boundary")
    try:
        check_boundary(boundary)
    except MalformedMultipartError as exc:
        raise MalformedRequestError(str(exc)) from exc
    return boundary


def _known_transfer_syntax(uid: str) -> bool:
    return (
        uid in uids.NATIVE_TRANSFER_SYNTAXES
        or uid in uids.VIDEO_TRANSFER_SYNTAXES
        or uids.frame_media_type(uid) != "application/octet-stream"
        or UID(uid).is_transfer_syntax
    )


def _text(value: Any) -> str | None:
    """A UID-valued attribute as text, if it holds a valid UID."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    text = str(value).strip("\x00 ") if value is not None else ""
    return text if uids.is_valid_uid(text) else None


def _identify(path: str) -> tuple[str | None, str | None]:
    """The SOP Class and Instance UIDs of an instance the converter refused, if legible."""
    try:
        ds = pydicom.dcmread(
            path,
            stop_before_pixels=True,
            force=True,
            specific_tags=["SOPClassUID", "SOPInstanceUID"],
        )
    except Exception:  # best effort only: the failure itself is already known
        return None, None
    meta = getattr(ds, "file_meta", None) or {}
    return (
        _text(ds.get("SOPClassUID")) or _text(getattr(meta, "MediaStorageSOPClassUID", None)),
        _text(ds.get("SOPInstanceUID")) or _text(getattr(meta, "MediaStorageSOPInstanceUID", None)),
    )


def _failed(outcome: _Outcome, exc: Exception, path: str, transfer_syntax: str | None) -> _Outcome:
    """The part's FailureReason (PS3.4 Annex I) for the exception that stopped it."""
    failure = failure_of(exc, f"part {outcome.number}")
    if failure.internal:
        logger.error("STOW-RS part %d", outcome.number, exc_info=exc)
        return outcome.fail(PROCESSING_FAILURE, f"internal error: {type(exc).__name__}")
    if isinstance(exc, NotAnInstanceError):
        outcome.sop_class_uid, outcome.sop_instance_uid = _identify(path)
        return outcome.fail(SOP_CLASS_NOT_SUPPORTED, failure.reason)
    if isinstance(exc, UnsupportedTransferSyntaxError):
        return outcome.fail(TRANSFER_SYNTAX_NOT_SUPPORTED, failure.reason)
    if isinstance(exc, InvalidInputError):
        if outcome.sop_instance_uid is None and not isinstance(exc, NotDicomError):
            # Refused before its UIDs were read (a missing Study UID, say).
            outcome.sop_class_uid, outcome.sop_instance_uid = _identify(path)
        if transfer_syntax is not None and not _known_transfer_syntax(transfer_syntax):
            return outcome.fail(
                TRANSFER_SYNTAX_NOT_SUPPORTED,
                f"transfer syntax {transfer_syntax} is not supported: {failure.reason}",
            )
        return outcome.fail(CANNOT_UNDERSTAND, failure.reason)
    if isinstance(exc, OSError):
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        return outcome.fail(
            OUT_OF_RESOURCES if full else PROCESSING_FAILURE, f"cannot store: {failure.reason}"
        )
    return outcome.fail(PROCESSING_FAILURE, failure.reason)


def _warning_text(outcome: _Outcome) -> str:
    text = f"part {outcome.number}: {outcome.reason}"
    text = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)[:300]
    return f'299 dicomweb-archive "{text}"'


class StowService:
    """STOW-RS over ``archive``: the endpoint of the two ``POST`` routes."""

    def __init__(
        self,
        archive: Archive,
        *,
        write_token: str | None = None,
        max_upload_bytes: int | None = DEFAULT_MAX_UPLOAD_BYTES,
    ) -> None:
        self.archive = archive
        self.write_token = write_token
        self.max_upload_bytes = max_upload_bytes
        self._options: ConvertOptions | None = None

    async def store_instances(self, request: Request) -> Response:
        try:
            self._authorize(request)
            study = request.path_params.get("study")
            if study is not None and not uids.is_valid_uid(study):
                raise MalformedRequestError(f"{study!r} is not a valid UID")
            boundary = _boundary_of(request.headers.get("content-type"))
            self._check_length(request)
            options = await anyio.to_thread.run_sync(self._convert_options)
            parts: list[_Part] = []
            try:
                await self._receive(request, boundary, parts)
                outcomes = await anyio.to_thread.run_sync(self._store, options, parts, study)
            finally:
                for part in parts:
                    part.discard()
        except OSError as exc:  # preparing the archive or spooling the body
            raise ArchiveUnavailableError(f"the archive cannot be written: {exc}") from exc
        except ClientDisconnect:
            # Nothing was stored and nobody is left to answer.
            logger.info("STOW-RS: the client went away before the body was complete")
            return Response(status_code=400)
        return self._answer(request, study, outcomes)

    # -- the request ---------------------------------------------------------------

    def _authorize(self, request: Request) -> None:
        if self.write_token is None:
            return
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise UnauthorizedError(
                "storing instances needs a bearer token", challenge='Bearer realm="dicomweb"'
            )
        given = credentials.strip().encode("utf-8", "replace")
        if not hmac.compare_digest(given, self.write_token.encode("utf-8")):
            raise UnauthorizedError(
                "the bearer token is not valid",
                challenge='Bearer realm="dicomweb", error="invalid_token"',
            )

    def _too_large(self) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"the request body exceeds the upload limit of {self.max_upload_bytes} bytes"
        )

    def _check_length(self, request: Request) -> None:
        length = request.headers.get("content-length")
        if length is None or self.max_upload_bytes is None:
            return
        try:
            declared = parse_unsigned(length)
        except ValueError as exc:
            raise MalformedRequestError(f"Content-Length {length!r} is not a number") from exc
        if declared > self.max_upload_bytes:
            raise self._too_large()

    def _new_part(self, parts: list[_Part], content_type: str | None) -> _Part:
        folder = self.archive.path(f"{paths.WORK_DIR}/tmp")
        folder.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=folder, prefix="stow-")
        part = _Part(len(parts) + 1, path, os.fdopen(fd, "wb"), content_type)
        parts.append(part)
        return part

    async def _receive(self, request: Request, boundary: str | None, parts: list[_Part]) -> None:
        """Spool the body's parts into ``parts`` (which the caller removes)."""
        parser = MultipartParser(boundary) if boundary is not None else None
        current = self._new_part(parts, DICOM) if parser is None else None
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if self.max_upload_bytes is not None and received > self.max_upload_bytes:
                    raise self._too_large()
                if parser is None:
                    assert current is not None
                    await current.write(chunk)
                    continue
                for event in parser.feed(chunk):
                    if isinstance(event, PartStart):
                        current = self._new_part(parts, event.headers.get("content-type"))
                    elif isinstance(event, PartData):
                        assert current is not None
                        await current.write(event.data)
                    else:
                        assert current is not None
                        await current.close()
            if parser is not None:
                parser.close()
        except MalformedMultipartError as exc:
            raise MalformedRequestError(f"malformed multipart body: {exc}") from exc
        for part in parts:
            await part.close()
        if not parts:
            raise MalformedRequestError("the multipart body holds no part")
        if parser is None and parts[0].size == 0:
            raise MalformedRequestError("the request body is empty")

    # -- storing (in a worker thread) ------------------------------------------------

    def _convert_options(self) -> ConvertOptions:
        """The archive's own conversion options, checked against its manifest once."""
        if self._options is None:
            stored = read_options(self.archive)
            ensure(self.archive, stored)
            self._options = ConvertOptions.for_archive(stored, workers=1)
        return self._options

    def _store(
        self, options: ConvertOptions, parts: list[_Part], study: str | None
    ) -> list[_Outcome]:
        outcomes = [self._store_part(options, part, study) for part in parts]
        stored = [o for o in outcomes if o.failure is None]
        touched = {o.study_instance_uid for o in stored if o.study_instance_uid}
        if touched:
            try:
                Converter(self.archive.root, options).refresh(touched)
            except (OSError, DicomwebArchiveError) as exc:
                # The instances are in place but not yet listed: storing them again
                # (idempotent) finishes the job.
                logger.exception("refreshing studies %s failed", sorted(touched))
                for outcome in stored:
                    outcome.fail(PROCESSING_FAILURE, f"the study could not be refreshed: {exc}")
        for outcome in outcomes:
            if outcome.failure is not None:
                logger.warning("STOW-RS part %d failed: %s", outcome.number, outcome.reason)
        return outcomes

    def _store_part(self, options: ConvertOptions, part: _Part, study: str | None) -> _Outcome:
        outcome = _Outcome(part.number)
        name = f"part {part.number}"
        if part.content_type is not None:
            declared = parse_media_range(part.content_type)
            if declared is None or declared.media_type != DICOM:
                return outcome.fail(
                    CANNOT_UNDERSTAND, f"its Content-Type {part.content_type!r} is not {DICOM}"
                )
        if part.size == 0:
            return outcome.fail(CANNOT_UNDERSTAND, "the part is empty")
        transfer_syntax = None
        try:
            with open(part.path, "rb") as fp:
                parsed = read_instance(fp, name)
                transfer_syntax = parsed.transfer_syntax_uid
                outcome.sop_class_uid = _text(parsed.dataset.get("SOPClassUID")) or _text(
                    getattr(parsed.file_meta, "MediaStorageSOPClassUID", None)
                )
                outcome.sop_instance_uid = parsed.sop_instance_uid
                outcome.study_instance_uid = parsed.study_instance_uid
                outcome.series_instance_uid = parsed.series_instance_uid
                if study is not None and parsed.study_instance_uid != study:
                    return outcome.fail(
                        DATASET_MISMATCH,
                        f"the instance belongs to study {parsed.study_instance_uid}, not {study}",
                    )
                store_instance(self.archive, options, parsed)
        except Exception as exc:  # one bad part must not fail the others
            return _failed(outcome, exc, part.path, transfer_syntax)
        return outcome

    # -- the answer ----------------------------------------------------------------

    def _answer(self, request: Request, study: str | None, outcomes: list[_Outcome]) -> Response:
        path = request.url.path
        service = path[: path.rfind("/studies")] if "/studies" in path else path
        root = f"{request.url.scheme}://{request.url.netloc}{service}"
        stored = [o for o in outcomes if o.failure is None]
        failed = [o for o in outcomes if o.failure is not None]
        body = _response_dataset(root, study, stored, failed)
        status = 200 if not failed else 202 if stored else 409
        headers = {}
        if failed:
            headers["Warning"] = ", ".join(_warning_text(o) for o in failed[:_MAX_WARNINGS])
        logger.info("STOW-RS: %d stored, %d failed", len(stored), len(failed))
        return Response(
            orjson.dumps(body, option=orjson.OPT_SORT_KEYS),
            status_code=status,
            media_type=DICOM_JSON,
            headers=headers,
        )


def _uid_element(value: str | None) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def _response_dataset(
    root: str, study: str | None, stored: list[_Outcome], failed: list[_Outcome]
) -> dict[str, Any]:
    """The Store Instances Response Module of one request (PS3.18 10.5.3)."""
    dataset: dict[str, Any] = {}
    studies = {o.study_instance_uid for o in stored}
    target = study or (next(iter(studies)) if len(studies) == 1 else None)
    if target:
        dataset[_RETRIEVE_URL] = {"vr": "UR", "Value": [f"{root}/studies/{target}"]}
    if stored:
        dataset[_REFERENCED_SOP_SEQUENCE] = {
            "vr": "SQ",
            "Value": [
                {
                    _REFERENCED_SOP_CLASS_UID: _uid_element(o.sop_class_uid),
                    _REFERENCED_SOP_INSTANCE_UID: _uid_element(o.sop_instance_uid),
                    _RETRIEVE_URL: {
                        "vr": "UR",
                        "Value": [
                            f"{root}/studies/{o.study_instance_uid}/series/"
                            f"{o.series_instance_uid}/instances/{o.sop_instance_uid}"
                        ],
                    },
                }
                for o in stored
            ],
        }
    if failed:
        dataset[_FAILED_SOP_SEQUENCE] = {
            "vr": "SQ",
            "Value": [
                {
                    _REFERENCED_SOP_CLASS_UID: _uid_element(o.sop_class_uid),
                    _REFERENCED_SOP_INSTANCE_UID: _uid_element(o.sop_instance_uid),
                    _FAILURE_REASON: {"vr": "US", "Value": [o.failure]},
                }
                for o in failed
            ],
        }
    return dataset
