"""Batches: one task per item on worker processes, and what became of each item.

The converter (one P10 input per task) and the transcoder (one archived instance
per task) share this.  A task never raises for its item: :func:`failure_of` is
the one place an exception becomes a refusal or a failure with a reason, so one
bad item stops nothing, and :class:`Summary` counts the outcomes.  A
:class:`Runner` says where tasks run: :class:`PoolRunner` on this machine's
cores, :class:`~dicomweb_archive.cluster.DaskRunner` on a Dask cluster.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from dicomweb_archive.errors import (
    DicomwebArchiveError,
    NotAnInstanceError,
    UnsupportedImageError,
)

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Chunks sent to a worker hold at most this many items: enough to amortise the
#: round trip, few enough that the last worker does not run alone for long.
_MAX_CHUNK = 16


#: glibc's ``mallopt`` parameters (``malloc.h``).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2


def keep_freed_memory() -> bool:
    """Keep the memory this process frees for its next allocations; whether it could.

    glibc's malloc gives the top of its heap back to the system once 128 KB
    of it are free, and takes it again page by page (a page fault each) at the
    next allocations: a conversion frees and makes about the same objects for
    every input (its JSON, the gzip streams' 256 KB of state).  Kept up to
    256 MB (beyond that the heap shrinks as before) and grown 16 MB at a time,
    one study of 300 CT slices converted in one process took about a tenth
    less CPU.  Set before the workers start: forked, they inherit it.  Where
    the C library has no ``mallopt`` (or ignores it), nothing changes.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no C library by name, or no mallopt
        return False
    trim = mallopt(_M_TRIM_THRESHOLD, 256 * 2**20)
    return bool(trim and mallopt(_M_TOP_PAD, 16 * 2**20))


def worker_count(workers: int | None) -> int:
    """``workers``, or every core when ``None``."""
    return max(1, workers or os.cpu_count() or 1)


def _chunksize(total: int, workers: int) -> int:
    return max(1, min(_MAX_CHUNK, total // (workers * 8)))


def run_tasks(
    task: Callable[[Item], Result], items: Sequence[Item], workers: int
) -> Iterator[Result]:
    """``task`` of every item, in the order they finish, on up to ``workers`` processes.

    One worker (or one item) runs in this process: no pool to start.  ``task``
    and the items are pickled for the workers when ``fork`` is unavailable.
    A worker leaves the objects it starts with (its modules, forked) out of its
    garbage collections, which then pass over what its tasks made only (in a
    conversion, collections over the modules took about 0.1 ms per instance).
    """
    workers = min(workers, max(1, len(items)))
    if workers == 1:
        yield from map(task, items)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(workers, initializer=gc.freeze) as pool:
        yield from pool.imap_unordered(task, items, _chunksize(len(items), workers))


#: What a runner answers for an item whose task was lost with its worker, given
#: the item and why (it never ran to the end, so the task could not say).
Lost = Callable[[Item, str], Result]


class Runner(Protocol):
    """Runs one task per item somewhere and yields the results as they finish."""

    @property
    def workers(self) -> int:
        """How many tasks run at once."""
        ...

    def map(
        self, task: Callable[[Item], Result], items: Sequence[Item], lost: Lost[Item, Result]
    ) -> Iterator[Result]: ...


@dataclass(frozen=True)
class PoolRunner:
    """Tasks on ``workers`` processes of this machine (see :func:`run_tasks`)."""

    workers: int

    def map(
        self, task: Callable[[Item], Result], items: Sequence[Item], lost: Lost[Item, Result]
    ) -> Iterator[Result]:
        # A pool's worker that dies takes the run with it: nothing is ever lost.
        return run_tasks(task, items, self.workers)


@dataclass(frozen=True)
class Failure:
    """Why one item was not done."""

    reason: str
    #: Left as it is on purpose (not an instance; an image HTJ2K cannot hold):
    #: counted as skipped, not as failed.
    refused: bool = False
    #: A bug rather than a fault of the item or the archive.
    internal: bool = False


def failure_of(exc: Exception, name: str = "") -> Failure:
    """What ``exc``, raised while doing the item ``name``, means for the run.

    The reason does not repeat ``name``: the outcome names its item already.
    """
    if isinstance(exc, NotAnInstanceError | UnsupportedImageError):
        return Failure(_without_name(exc, name), refused=True)
    if isinstance(exc, DicomwebArchiveError):
        return Failure(_without_name(exc, name))
    if isinstance(exc, OSError):
        what = (exc.strerror or str(exc)).lower()
        if exc.errno in _WRITE_ERRNOS:  # only writing (the archive, a spool) gives these
            return Failure(f"cannot write: {what}")
        return Failure(f"{what}: {exc.filename}" if exc.filename else what)
    return Failure(f"internal error: {type(exc).__name__}: {exc}", internal=True)


_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def _without_name(exc: Exception, name: str) -> str:
    text = str(exc)
    prefix = f"{name}: "
    return text[len(prefix) :] if name and text.startswith(prefix) else text


class Outcome(Protocol):
    """What became of one item: ``status`` names it, ``skipped`` and ``failed`` among others."""

    @property
    def status(self) -> str: ...


AnOutcome = TypeVar("AnOutcome", bound=Outcome)


@dataclass
class Summary(Generic[AnOutcome]):
    """The outcomes of one run, counted by status; failures and refusals kept."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[AnOutcome] = field(default_factory=list)
    skipped: list[AnOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.counts["failed"] == 0

    def add(self, outcome: AnOutcome) -> None:
        self.counts[outcome.status] += 1
        if outcome.status == "failed":
            self.failures.append(outcome)
        elif outcome.status == "skipped":
            self.skipped.append(outcome)
