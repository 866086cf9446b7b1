"""Outcome summary and the exception→outcome ladder of a run."""

from __future__ import annotations

import errno
from dataclasses import dataclass

import pytest

from dicomweb_archive.batch import Summary, failure_of
from dicomweb_archive.errors import (
    ArchiveError,
    MalformedDicomError,
    NotAnInstanceError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)


@pytest.mark.parametrize(
    "exc",
    [NotAnInstanceError("a.dcm: a DICOMDIR"), UnsupportedImageError("a.dcm: 32-bit samples")],
)
def test_refusals_are_skipped_not_failed(exc: Exception) -> None:
    failure = failure_of(exc, "a.dcm")
    assert failure.refused and not failure.internal
    assert not failure.reason.startswith("a.dcm")


@pytest.mark.parametrize(
    "exc",
    [
        MalformedDicomError("a.dcm: bad element"),
        UnsupportedTransferSyntaxError("a.dcm: bad element"),
        ArchiveError("a.dcm: bad element"),
    ],
)
def test_library_errors_fail_with_their_message_without_the_name(exc: Exception) -> None:
    failure = failure_of(exc, "a.dcm")
    assert failure == failure_of(exc, "a.dcm")
    assert (failure.reason, failure.refused, failure.internal) == ("bad element", False, False)


def test_the_name_is_only_cut_from_the_start() -> None:
    assert failure_of(MalformedDicomError("bad element in a.dcm"), "a.dcm").reason == (
        "bad element in a.dcm"
    )
    assert failure_of(MalformedDicomError("a.dcm: x"), "").reason == "a.dcm: x"


def test_os_errors_in_words() -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "/archive/studies/1")
    assert failure_of(full).reason == "cannot write: no space left on device"
    assert not failure_of(full).internal
    missing = OSError(errno.ENOENT, "No such file or directory", "/archive/x")
    assert failure_of(missing).reason == "no such file or directory: /archive/x"
    assert failure_of(OSError(errno.EIO, "I/O error")).reason == "i/o error"


def test_anything_else_is_an_internal_error() -> None:
    failure = failure_of(KeyError("x"), "a.dcm")
    assert failure.internal and not failure.refused
    assert failure.reason == "internal error: KeyError: 'x'"


@dataclass
class _Outcome:
    status: str


def test_summary_counts_and_keeps_failures_and_refusals() -> None:
    summary: Summary[_Outcome] = Summary()
    assert summary.ok
    outcomes = [_Outcome("done"), _Outcome("failed"), _Outcome("skipped"), _Outcome("done")]
    for outcome in outcomes:
        summary.add(outcome)
    assert summary.counts == {"done": 2, "failed": 1, "skipped": 1}
    assert summary.failures == [outcomes[1]]
    assert summary.skipped == [outcomes[2]]
    assert not summary.ok
