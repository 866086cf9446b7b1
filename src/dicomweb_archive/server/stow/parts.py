"""Storing the parts of a STOW-RS request, each on its own (in a worker thread).

Each part goes along the converter's own path
(:func:`~dicomweb_archive.convert.instance.store_instance`: atomic and
idempotent), so one bad part fails alone with a FailureReason (PS3.4 Annex I).
The touched studies are marked stale before the answer (write-behind,
:meth:`~dicomweb_archive.store.catalog.Catalog.defer`): the server's flusher
refreshes their documents and the QIDO-RS index shortly after, and any read of
them before that refreshes them first, so a search right after a store finds
the new instances.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pydicom

from dicomweb_archive import uids
from dicomweb_archive.convert.instance import store_instance
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.convert.status import (
    CANNOT_UNDERSTAND,
    DATASET_MISMATCH,
    PROCESSING_FAILURE,
    store_failure,
)
from dicomweb_archive.errors import (
    DicomwebArchiveError,
    InvalidInputError,
    NotAnInstanceError,
    NotDicomError,
)
from dicomweb_archive.media import DICOM, parse_media_range
from dicomweb_archive.p10.reader import read_instance
from dicomweb_archive.server.stow.body import SpooledPart
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.types import InstanceKey

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What became of one part."""

    number: int
    sop_class_uid: str | None = None
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    failure: int | None = None
    reason: str | None = None
    #: Where the instance was stored.
    stored: InstanceKey | None = None

    def fail(self, code: int, reason: str) -> Outcome:
        self.failure, self.reason = code, reason
        return self


def store_parts(
    archive: Archive, options: ConvertOptions, parts: list[SpooledPart], study: str | None
) -> list[Outcome]:
    """Store every part (into ``study`` only, when the request names one)."""
    outcomes = [_store_part(archive, options, part, study) for part in parts]
    stored = [o for o in outcomes if o.failure is None]
    touched = {o.stored.study_instance_uid for o in stored if o.stored}
    if touched:
        try:
            Catalog(archive).defer_instances(o.stored for o in stored if o.stored)
        except (OSError, DicomwebArchiveError) as exc:
            # The instances are in place but not yet marked: storing them again
            # (idempotent) finishes the job.
            logger.exception("marking studies %s stale failed", sorted(touched))
            for outcome in stored:
                outcome.fail(PROCESSING_FAILURE, f"the study could not be marked: {exc}")
    for outcome in outcomes:
        if outcome.failure is not None:
            logger.warning("STOW-RS part %d failed: %s", outcome.number, outcome.reason)
    return outcomes


def _store_part(
    archive: Archive, options: ConvertOptions, part: SpooledPart, study: str | None
) -> Outcome:
    outcome = Outcome(part.number)
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
        with part.open() as fp:
            parsed = read_instance(fp, name)
            transfer_syntax = parsed.transfer_syntax_uid
            outcome.sop_class_uid = _text(parsed.sop_class_uid) or _text(
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
            outcome.stored = store_instance(archive, options, parsed).key
    except Exception as exc:  # one bad part must not fail the others
        return _failed(outcome, exc, part, transfer_syntax)
    return outcome


def _failed(
    outcome: Outcome, exc: Exception, part: SpooledPart, transfer_syntax: str | None
) -> Outcome:
    """The part's FailureReason (PS3.4 Annex I) for the exception that stopped it."""
    failure = store_failure(exc, transfer_syntax, f"part {outcome.number}")
    if failure.internal:
        logger.error("STOW-RS part %d", outcome.number, exc_info=exc)
    elif isinstance(exc, NotAnInstanceError) or (
        # Refused before its UIDs were read (a missing Study UID, say).
        isinstance(exc, InvalidInputError)
        and outcome.sop_instance_uid is None
        and not isinstance(exc, NotDicomError)
    ):
        outcome.sop_class_uid, outcome.sop_instance_uid = _identify(part)
    return outcome.fail(failure.status, failure.reason)


def _text(value: Any) -> str | None:
    """A UID-valued attribute as text, if it holds a valid UID."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    text = str(value).strip("\x00 ") if value is not None else ""
    return text if uids.is_valid_uid(text) else None


def _identify(part: SpooledPart) -> tuple[str | None, str | None]:
    """The SOP Class and Instance UIDs of an instance the converter refused, if legible."""
    try:
        with part.open() as fp:
            ds = pydicom.dcmread(
                fp,
                stop_before_pixels=True,
                force=True,
                specific_tags=["SOPClassUID", "SOPInstanceUID"],
            )
        meta = getattr(ds, "file_meta", None) or {}
        # pydicom converts a value when it is read: an unknown VR fails there.
        return (
            _text(ds.get("SOPClassUID")) or _text(getattr(meta, "MediaStorageSOPClassUID", None)),
            _text(ds.get("SOPInstanceUID"))
            or _text(getattr(meta, "MediaStorageSOPInstanceUID", None)),
        )
    except Exception:  # best effort only: the failure itself is already known
        return None, None
