"""Why an instance could not be stored, in the standard's status codes.

STOW-RS's FailureReason (PS3.18 Table I.2-1) and a C-STORE response's Status
(PS3.4 B.2.3) share these codes, so both front ends map an exception from
:func:`~dicomweb_archive.convert.instance.store_instance` (or from reading the
instance before it) through :func:`store_failure`, the one place that decides.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from pydicom.uid import UID

from dicomweb_archive import uids
from dicomweb_archive.batch import failure_of
from dicomweb_archive.errors import (
    DuplicateInstanceError,
    InvalidInputError,
    NotAnInstanceError,
    UnsupportedTransferSyntaxError,
)

#: Processing failure (PS3.7 C.4.3): a fault of ours, not of the instance.
PROCESSING_FAILURE = 0x0110
#: Refused: SOP Class not supported.
SOP_CLASS_NOT_SUPPORTED = 0x0122
#: Refused: out of resources.
OUT_OF_RESOURCES = 0xA700
#: Error: data set does not match SOP Class (STOW-RS also uses it for an
#: instance of another study than the one the request names).
DATASET_MISMATCH = 0xA900
#: Error: cannot understand.
CANNOT_UNDERSTAND = 0xC000
#: STOW-RS only (PS3.18 Table I.2-1): the transfer syntax is not supported.
#: DIMSE negotiates transfer syntaxes before any data set is sent.
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
#: Warning: coercion of data elements.
COERCION_OF_DATA_ELEMENTS = 0xB000
#: Warning: data set does not match SOP Class (stored nevertheless).
DATASET_MISMATCH_WARNING = 0xB007


@dataclass(frozen=True)
class StoreFailure:
    """The status code of a failed store, and its reason in words."""

    status: int
    reason: str
    #: A bug rather than a fault of the instance or the archive: log its traceback.
    internal: bool = False


def store_failure(exc: Exception, transfer_syntax: str | None, name: str = "") -> StoreFailure:
    """The status of storing an instance that raised ``exc``.

    ``transfer_syntax`` is the instance's, when it was read that far; ``name``
    names the instance in the exception's message (left out of the reason).
    """
    failure = failure_of(exc, name)
    if failure.internal:
        return StoreFailure(
            PROCESSING_FAILURE, f"internal error: {type(exc).__name__}", internal=True
        )
    if isinstance(exc, DuplicateInstanceError):  # refused by the duplicates policy
        return StoreFailure(exc.failure_reason, failure.reason)
    if isinstance(exc, NotAnInstanceError):
        return StoreFailure(SOP_CLASS_NOT_SUPPORTED, failure.reason)
    if isinstance(exc, UnsupportedTransferSyntaxError):
        return StoreFailure(TRANSFER_SYNTAX_NOT_SUPPORTED, failure.reason)
    if isinstance(exc, InvalidInputError):
        if transfer_syntax is not None and not _known_transfer_syntax(transfer_syntax):
            return StoreFailure(
                TRANSFER_SYNTAX_NOT_SUPPORTED,
                f"transfer syntax {transfer_syntax} is not supported: {failure.reason}",
            )
        return StoreFailure(CANNOT_UNDERSTAND, failure.reason)
    if isinstance(exc, OSError):
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        return StoreFailure(
            OUT_OF_RESOURCES if full else PROCESSING_FAILURE, f"cannot store: {failure.reason}"
        )
    return StoreFailure(PROCESSING_FAILURE, failure.reason)


def _known_transfer_syntax(uid: str) -> bool:
    return (
        uid in uids.NATIVE_TRANSFER_SYNTAXES
        or uid in uids.VIDEO_TRANSFER_SYNTAXES
        or uids.frame_media_type(uid) != "application/octet-stream"
        or UID(uid).is_transfer_syntax
    )
