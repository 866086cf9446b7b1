"""C-STORE SCP: each received instance stored as ``dwa convert`` and STOW-RS store it.

The data set, as the peer encoded it, arrives in a file with its file meta
(:mod:`~dicomweb_archive.dimse.receipt`), is stored from it through
:func:`~dicomweb_archive.convert.instance.store_instance` (atomic, idempotent;
the Pixel Data read from the file a frame at a time) and the study is marked
for the write-behind flusher, as STOW-RS does; the response's Status says what
became of it (PS3.4 B.2.3), the reason in its Error Comment:

- ``0x0000`` stored (or already stored, the same);
- ``0xB007`` stored, but the data set's SOP Class UID is not the request's;
- ``0xB000`` stored with the store's warnings;
- ``0xA900`` the data set's SOP Instance UID is not the request's;
- ``0xA700`` the data set is larger than ``--max-dataset-size``, or could not
  be received (a full disk);
- otherwise the status :func:`~dicomweb_archive.convert.status.store_failure`
  gives (``0xC000`` cannot understand, ``0xA700`` out of resources, ``0x0110``
  processing failure, …).
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from typing import Any, BinaryIO

from pydicom.dataset import Dataset

from dicomweb_archive.batch import failure_of
from dicomweb_archive.convert.instance import InstanceOutcome, store_instance
from dicomweb_archive.convert.status import (
    CANNOT_UNDERSTAND,
    COERCION_OF_DATA_ELEMENTS,
    DATASET_MISMATCH,
    DATASET_MISMATCH_WARNING,
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    TRANSFER_SYNTAX_NOT_SUPPORTED,
    store_failure,
)
from dicomweb_archive.dimse.associations import peer_of
from dicomweb_archive.dimse.context import ListenContext
from dicomweb_archive.dimse.receipt import Receipt
from dicomweb_archive.errors import DicomwebArchiveError
from dicomweb_archive.p10.reader import read_instance

logger = logging.getLogger("dicomweb_archive.dimse")

SUCCESS = 0x0000
#: Error Comment is an LO: at most 64 characters.
_COMMENT_LENGTH = 64


@dataclass(frozen=True)
class StoreStatus:
    """The Status of one C-STORE response, and the reason in words."""

    status: int
    comment: str = ""

    @property
    def failed(self) -> bool:
        return self.status != SUCCESS and self.status >> 12 != 0xB

    def to_dataset(self) -> Dataset:
        ds = Dataset()
        ds.Status = self.status
        if self.comment:
            ds.ErrorComment = _comment(self.comment)
        return ds


def _comment(text: str) -> str:
    printable = "".join(c if " " <= c <= "~" and c != "\\" else "?" for c in text)
    if len(printable) <= _COMMENT_LENGTH:
        return printable
    return printable[: _COMMENT_LENGTH - 3] + "..."


def store_dataset(
    context: ListenContext, encoded: BinaryIO, sop_class: str, sop_instance: str
) -> StoreStatus:
    """Store one C-STORE's data set, ``encoded`` as P10; what the response says."""
    name = f"C-STORE {sop_instance}"
    transfer_syntax = None
    try:
        parsed = read_instance(encoded, name)
        transfer_syntax = parsed.transfer_syntax_uid
        if parsed.sop_instance_uid != sop_instance:
            return StoreStatus(
                DATASET_MISMATCH,
                f"the data set is SOP Instance {parsed.sop_instance_uid}, not {sop_instance}",
            )
        outcome = store_instance(context.archive, context.options, parsed)
    except Exception as exc:  # one bad instance fails alone
        failure = store_failure(exc, transfer_syntax, name)
        if failure.internal:
            logger.error("%s", name, exc_info=exc)
        # DIMSE negotiated the transfer syntax: a data set we cannot read in
        # it is one we cannot understand (0xC122 is STOW-RS's alone).
        status = failure.status
        if status == TRANSFER_SYNTAX_NOT_SUPPORTED:
            status = CANNOT_UNDERSTAND
        return StoreStatus(status, failure.reason)
    return _stored(context, outcome, parsed.sop_class_uid, sop_class)


def _stored(
    context: ListenContext, outcome: InstanceOutcome, dataset_class: str, sop_class: str
) -> StoreStatus:
    try:
        if outcome.key is not None:
            context.catalog.defer_instances([outcome.key])
        else:
            context.catalog.defer([str(outcome.study_instance_uid)])
    except (OSError, DicomwebArchiveError) as exc:
        # Stored but not yet marked: storing it again (idempotent) finishes the job.
        return StoreStatus(PROCESSING_FAILURE, f"the study could not be marked: {exc}")
    if dataset_class != sop_class:
        return StoreStatus(
            DATASET_MISMATCH_WARNING,
            f"stored; its SOP Class UID is {dataset_class or 'missing'}, not {sop_class}",
        )
    if outcome.warnings:
        return StoreStatus(COERCION_OF_DATA_ELEMENTS, "; ".join(outcome.warnings))
    return StoreStatus(SUCCESS)


def store_received(
    context: ListenContext, receipt: Receipt, sop_class: str, sop_instance: str
) -> StoreStatus:
    """Store the data set received in ``receipt`` (see :func:`store_dataset`)."""
    if receipt.too_large:
        return StoreStatus(
            OUT_OF_RESOURCES, f"the data set exceeds the limit of {receipt.limit} bytes"
        )
    if receipt.error is not None:
        status = store_failure(receipt.error, None).status
        return StoreStatus(status, f"cannot receive: {failure_of(receipt.error).reason}")
    receipt.close()
    with open(receipt.path, "rb") as encoded:
        return store_dataset(context, encoded, sop_class, sop_instance)


def _store(event: Any, context: ListenContext, sop_class: str, sop_instance: str) -> StoreStatus:
    path = event.dataset_path
    if path is None:  # none to a file (no data set; no file meta): in memory, bounded
        return store_dataset(context, io.BytesIO(event.encoded_dataset()), sop_class, sop_instance)
    receipt = context.receipts.take(path)
    if receipt is None:
        if not os.path.exists(path):  # removed when the connection closed
            return StoreStatus(
                PROCESSING_FAILURE, "the association ended before the data set was stored"
            )
        # pynetdicom's own file (its STORE_RECV_CHUNKED_DATASET): it removes it.
        with open(path, "rb") as encoded:
            return store_dataset(context, encoded, sop_class, sop_instance)
    try:
        return store_received(context, receipt, sop_class, sop_instance)
    finally:
        receipt.discard()


def handle_store(event: Any, context: ListenContext) -> Dataset:
    """The handler of ``evt.EVT_C_STORE``."""
    request = event.request
    sop_class = str(request.AffectedSOPClassUID)
    sop_instance = str(request.AffectedSOPInstanceUID)
    result = _store(event, context, sop_class, sop_instance)
    associations = context.associations
    if result.failed:
        associations.count(event.assoc, "failed")
        logger.warning(
            "C-STORE from %s of SOP Instance %s failed (0x%04X): %s",
            peer_of(event.assoc),
            sop_instance,
            result.status,
            result.comment,
        )
    else:
        associations.count(event.assoc, "stored")
        if result.status != SUCCESS:
            logger.warning(
                "C-STORE from %s of SOP Instance %s stored with a warning (0x%04X): %s",
                peer_of(event.assoc),
                sop_instance,
                result.status,
                result.comment,
            )
    return result.to_dataset()
