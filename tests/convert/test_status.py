"""One mapping from a store's exception to the standard's status code and reason."""

from __future__ import annotations

import errno

from dicomweb_archive.convert.status import (
    CANNOT_UNDERSTAND,
    OUT_OF_RESOURCES,
    PROCESSING_FAILURE,
    SOP_CLASS_NOT_SUPPORTED,
    TRANSFER_SYNTAX_NOT_SUPPORTED,
    store_failure,
)
from dicomweb_archive.errors import (
    DuplicateInstanceError,
    MalformedDicomError,
    NotAnInstanceError,
    NotDicomError,
    UnsupportedTransferSyntaxError,
)


def test_invalid_input_cannot_be_understood_and_names_no_input() -> None:
    failure = store_failure(NotDicomError("part 2: not a DICOM file"), None, "part 2")
    assert failure.status == CANNOT_UNDERSTAND
    assert failure.reason == "not a DICOM file"
    assert not failure.internal


def test_an_unknown_transfer_syntax_is_named() -> None:
    failure = store_failure(MalformedDicomError("bad pixels"), "1.2.3.4.5", "")
    assert failure.status == TRANSFER_SYNTAX_NOT_SUPPORTED
    assert failure.reason == "transfer syntax 1.2.3.4.5 is not supported: bad pixels"
    known = store_failure(MalformedDicomError("bad pixels"), "1.2.840.10008.1.2.1", "")
    assert known.status == CANNOT_UNDERSTAND


def test_refusals() -> None:
    assert store_failure(NotAnInstanceError("a DICOMDIR"), None).status == SOP_CLASS_NOT_SUPPORTED
    unsupported = store_failure(UnsupportedTransferSyntaxError("no"), None)
    assert unsupported.status == TRANSFER_SYNTAX_NOT_SUPPORTED


def test_a_full_disk_is_out_of_resources_other_os_errors_are_processing_failures() -> None:
    full = store_failure(OSError(errno.ENOSPC, "No space left on device"), None)
    assert full.status == OUT_OF_RESOURCES
    assert full.reason == "cannot store: cannot write: no space left on device"
    denied = store_failure(PermissionError(errno.EACCES, "Permission denied", "/a"), None)
    assert denied.status == PROCESSING_FAILURE and "permission denied" in denied.reason


def test_a_bug_is_an_internal_processing_failure() -> None:
    failure = store_failure(KeyError("x"), None)
    assert failure.status == PROCESSING_FAILURE
    assert failure.internal and failure.reason == "internal error: KeyError"


def test_a_duplicate_refused_by_the_policy_is_duplicate_sop_instance() -> None:
    exc = DuplicateInstanceError("a.dcm: SOP Instance UID 1.2 is stored already with other content")
    failure = store_failure(exc, "1.2.840.10008.1.2.1", "a.dcm")
    assert failure.status == 0x0111  # Duplicate SOP Instance (PS3.7 Annex C)
    assert failure.reason == "SOP Instance UID 1.2 is stored already with other content"
