"""Worker pool, outcome summary and the exception→outcome ladder of a run."""

from __future__ import annotations

import errno
import gc
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from dicomweb_archive import batch
from dicomweb_archive.batch import Summary, failure_of, run_tasks, worker_count
from dicomweb_archive.errors import (
    ArchiveError,
    MalformedDicomError,
    NotAnInstanceError,
    UnsupportedImageError,
    UnsupportedTransferSyntaxError,
)


def _square(number: int) -> int:
    return number * number


def _pid(_: int) -> int:
    return os.getpid()


def test_worker_count_defaults_to_every_core() -> None:
    assert worker_count(3) == 3
    assert worker_count(None) == max(1, os.cpu_count() or 1)
    assert worker_count(0) == max(1, os.cpu_count() or 1)


@pytest.mark.parametrize("workers", [1, 2])
def test_run_tasks_does_every_item_once(workers: int) -> None:
    assert sorted(run_tasks(_square, list(range(50)), workers)) == [n * n for n in range(50)]


def test_one_worker_runs_in_this_process() -> None:
    assert set(run_tasks(_pid, [1, 2, 3], 1)) == {os.getpid()}
    # A single item needs no pool, whatever the worker count.
    assert list(run_tasks(_pid, [1], 4)) == [os.getpid()]


def _frozen(_: int) -> int:
    return gc.get_freeze_count()


def test_pool_workers_leave_what_they_start_with_out_of_collections() -> None:
    assert all(count > 0 for count in run_tasks(_frozen, [1, 2, 3, 4], 2))


def test_no_items_no_results() -> None:
    assert list(run_tasks(_square, [], 4)) == []


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


def test_keep_freed_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set where glibc's malloc is (the machines tested; in a process of its own,
    not this one's); nothing, and False, elsewhere."""
    code = "from dicomweb_archive.batch import keep_freed_memory; assert keep_freed_memory()"
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
    )

    class NoMallopt:
        def __init__(self, name: object) -> None:
            pass

    monkeypatch.setattr(batch.ctypes, "CDLL", NoMallopt)
    assert not batch.keep_freed_memory()
