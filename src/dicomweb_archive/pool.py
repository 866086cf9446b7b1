"""Tasks on this machine's worker processes: the :class:`~dicomweb_archive.batch.Runner`
of ``dwa convert`` and ``dwa transcode`` without a cluster.

Items go to the workers in chunks (one message each way per chunk), and only a
few chunks per worker are in flight at a time, so a run of millions of items
holds a bounded number of them in messages.  Results come back as chunks finish.

A worker that dies (killed, out of memory, a crash in native code) breaks its
pool: every chunk then in flight is lost with it, and the chunks are run again,
item by item, on a new pool.  Tasks are idempotent, so a rerun after a half-done
write is safe.  A lone item whose pool broke may only have shared it with the
culprit: once everything else is done, each such item runs again alone.  One
whose worker still dies is answered by the caller's ``lost``: the run reports
exactly which item it could not do, and only that one (the way
:class:`~dicomweb_archive.cluster.DaskRunner` treats a worker a cluster loses).
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TypeVar

from dicomweb_archive.batch import LOST_REASON, Lost
from dicomweb_archive.errors import WorkerError

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Chunks sent to a worker hold at most this many items: enough to amortise the
#: round trip, few enough that the last worker does not run alone for long.
_MAX_CHUNK = 16
#: Chunks in flight per worker: one running, one waiting, so it never idles.
_IN_FLIGHT = 2
#: Pools in a row whose workers died before taking a task, before giving up.
_STALLS = 3

#: glibc's ``mallopt`` parameters (``malloc.h``).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Keep the memory this process frees for its next allocations; whether it could.

    glibc's malloc gives the top of its heap back to the system once 128 KB
    of it are free, and takes it again page by page (a page fault each) at the
    next allocations: a conversion frees and makes about the same objects for
    every input (its JSON, the gzip streams' 256 KB of state).  Kept up to
    256 MB (beyond that the heap shrinks as before) and grown 16 MB at a time,
    one study of 300 CT slices converted in one process took about a tenth
    less CPU.  Setting these stops glibc from raising its mmap threshold as it
    goes, so the threshold is set too: blocks up to 32 MB (a frame of a CT
    slice is 0.5 MB) come from the heap, not from a new mapping each, every
    page of which faults when first written (140 faults per CT slice, against
    11).  Set before the workers start: forked, they inherit it.  Where the C
    library has no ``mallopt`` (or ignores it), nothing changes.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no C library by name, or no mallopt
        return False
    trim = mallopt(_M_TRIM_THRESHOLD, 256 * 2**20)
    return bool(trim and mallopt(_M_TOP_PAD, 16 * 2**20) and mallopt(_M_MMAP_THRESHOLD, 32 * 2**20))


def worker_count(workers: int | None) -> int:
    """``workers``, or every core when ``None``."""
    return max(1, workers or os.cpu_count() or 1)


def _chunksize(total: int, workers: int) -> int:
    return max(1, min(_MAX_CHUNK, total // (workers * 8)))


def run_tasks(
    task: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int,
    lost: Lost[Item, Result],
) -> Iterator[Result]:
    """``task`` of every item, in the order they finish, on up to ``workers`` processes.

    One worker (or one item) runs in this process: no pool to start.  ``task``
    and the items are pickled for the workers when ``fork`` is unavailable.
    An item whose worker died each time it ran is answered by ``lost``.
    """
    workers = min(workers, max(1, len(items)))
    if workers == 1:
        yield from map(task, items)
        return
    size = _chunksize(len(items), workers)
    waiting = deque(items[start : start + size] for start in range(0, len(items), size))
    #: Lone items whose pool broke: each may only have shared it with the culprit.
    suspects: list[Item] = []
    stalls = 0
    while waiting:
        before = len(waiting)
        broken = yield from _run_pool(task, waiting, workers)
        for chunk in broken:
            if len(chunk) > 1:  # which item kills its worker? each alone finds out
                waiting.extendleft([item] for item in reversed(chunk))
            else:
                suspects.append(chunk[0])
        # A pool whose workers died before taking a chunk (killed while idle):
        # the next one goes on, but not forever.
        stalls = stalls + 1 if not broken and len(waiting) == before else 0
        if stalls == _STALLS:
            raise WorkerError(f"{_STALLS} pools of worker processes in a row died unused")
    # Each suspect alone on a pool: a worker that dies now died of it.
    for item in suspects:
        if (yield from _run_pool(task, deque([[item]]), 1)):
            yield lost(item, LOST_REASON)


def _run_pool(
    task: Callable[[Item], Result], waiting: deque[Sequence[Item]], workers: int
) -> Generator[Result, None, list[Sequence[Item]]]:
    """Run the waiting chunks on a new pool of ``workers`` processes, yielding
    their results; returns the chunks lost when a worker died (the pool with it)."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    running: dict[Future[list[Result]], Sequence[Item]] = {}
    broken: list[Sequence[Item]] = []
    usable = True
    # A worker leaves the objects it starts with (its modules, forked) out of its
    # garbage collections, which then pass over what its tasks made only (in a
    # conversion, collections over the modules took about 0.1 ms per instance).
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=gc.freeze)
    try:
        while running or (waiting and usable):
            while usable and waiting and len(running) < workers * _IN_FLIGHT:
                chunk = waiting.popleft()
                try:
                    running[pool.submit(_run_chunk, task, chunk)] = chunk
                except BrokenProcessPool:  # broken since the last result: it never ran
                    waiting.appendleft(chunk)
                    usable = False
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                chunk = running.pop(future)
                try:
                    results = future.result()
                except BrokenProcessPool:  # every chunk in flight ends so, soon
                    broken.append(chunk)
                    usable = False
                else:
                    yield from results
        return broken
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_chunk(task: Callable[[Item], Result], chunk: Sequence[Item]) -> list[Result]:
    return [task(item) for item in chunk]


@dataclass(frozen=True)
class PoolRunner:
    """Tasks on ``workers`` processes of this machine (see :func:`run_tasks`)."""

    workers: int
    #: Forked (or started) here: every task sees this machine's files.
    local: bool = True

    def map(
        self, task: Callable[[Item], Result], items: Sequence[Item], lost: Lost[Item, Result]
    ) -> Iterator[Result]:
        return run_tasks(task, items, self.workers, lost)
