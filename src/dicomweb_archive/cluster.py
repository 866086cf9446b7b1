"""Tasks on a Dask distributed cluster: the :class:`~dicomweb_archive.batch.Runner`
of ``dwa convert --scheduler`` and ``--local-cluster``.

Items go to the cluster in chunks (one Dask task converts many inputs, so the
scheduler's per-task cost is paid once per chunk) and only a few chunks per
worker are in flight at a time: a run of millions of inputs holds a bounded
number of tasks in the scheduler.  Results come back as chunks finish.

A worker that dies (killed, out of memory) loses its running tasks; the
scheduler runs them again on another worker, up to its ``allowed-failures``.
Tasks are idempotent, so a rerun after a half-done write is safe.  A chunk the
scheduler gives up on (``KilledWorker``) is split into single items; a single
item given up on may only have shared its dying workers with the culprit, so
once everything else is done each such item runs again alone on the cluster.
One whose worker still dies is answered by the caller's ``lost``: the run
reports exactly which item it could not do, and only that one.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from dicomweb_archive.batch import LOST_REASON, Lost
from dicomweb_archive.errors import ClusterError

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Items in one task at most: enough to amortise the scheduler's round trip
#: (about a millisecond), few enough to spread a small run over every worker.
MAX_CHUNK = 32
#: Chunks queued per worker thread: it never waits for the next one.
IN_FLIGHT = 3
#: Seconds to wait for a scheduler before giving up.
CONNECT_TIMEOUT = 10


def chunk_size(total: int, workers: int) -> int:
    """Items per task: at least four tasks per worker where the items allow."""
    return max(1, min(MAX_CHUNK, total // (workers * 4)))


def _run_chunk(task: Callable[[Item], Result], chunk: Sequence[Item]) -> list[Result]:
    return [task(item) for item in chunk]


class DaskRunner:
    """Runs tasks on the cluster of ``client`` (a :class:`distributed.Client`)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @property
    def workers(self) -> int:
        """Worker threads of the cluster now (at least one)."""
        threads: dict[str, int] = self.client.nthreads()
        return max(1, sum(threads.values()))

    @property
    def local(self) -> bool:
        """False: the cluster's workers may be on other machines."""
        return False

    def map(
        self, task: Callable[[Item], Result], items: Sequence[Item], lost: Lost[Item, Result]
    ) -> Iterator[Result]:
        from distributed import KilledWorker, as_completed

        workers = self.workers
        size = chunk_size(len(items), workers)
        waiting = deque(items[start : start + size] for start in range(0, len(items), size))
        chunks: dict[Any, Sequence[Item]] = {}
        running = as_completed()
        #: Lone items whose worker died: each may only have shared it with the culprit.
        suspects: list[Item] = []

        def submit(chunk: Sequence[Item]) -> None:
            future = self.client.submit(_run_chunk, task, chunk, pure=False)
            chunks[future] = chunk
            running.add(future)

        for _ in range(min(len(waiting), workers * IN_FLIGHT)):
            submit(waiting.popleft())
        for future in running:
            chunk = chunks.pop(future)
            try:
                results: list[Result] = future.result()
            except KilledWorker:
                if len(chunk) > 1:
                    for item in chunk:  # which item kills its workers? each alone finds out
                        submit([item])
                else:
                    suspects.append(chunk[0])
            else:
                yield from results
            if waiting:
                submit(waiting.popleft())
        # Each suspect alone on the cluster: a worker that dies now died of it.
        for item in suspects:
            try:
                alone: list[Result] = self.client.submit(
                    _run_chunk, task, [item], pure=False
                ).result()
            except KilledWorker:
                yield lost(item, LOST_REASON)
            else:
                yield from alone


def _on_every_worker(setup: Callable[[], None]) -> Any:
    """A worker plugin running ``setup`` on each worker, those that join later too."""
    from distributed import WorkerPlugin

    class Setup(WorkerPlugin):
        name = "dicomweb-archive-setup"

        def setup(self, worker: Any) -> None:
            setup()

    return Setup()


@contextlib.contextmanager
def connect(
    scheduler: str | None = None,
    local_workers: int | None = None,
    *,
    setup: Callable[[], None] | None = None,
    timeout: float | None = None,
) -> Iterator[DaskRunner]:
    """A runner on the scheduler at ``scheduler`` (``tcp://host:port``), or on a
    cluster of ``local_workers`` processes started here and stopped on exit.

    ``setup`` runs on every worker before its tasks (as it ran in this process);
    ``timeout`` is in seconds (default :data:`CONNECT_TIMEOUT`).
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ClusterError(
            "a Dask cluster needs the cluster extra: pip install 'dicomweb-archive[cluster]'"
        ) from exc
    with contextlib.ExitStack() as stack:
        if scheduler is not None:
            try:
                client = stack.enter_context(Client(scheduler, timeout=timeout or CONNECT_TIMEOUT))
            except (OSError, TimeoutError) as exc:
                raise ClusterError(
                    f"cannot reach the Dask scheduler at {scheduler}: {exc}"
                ) from exc
        else:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=local_workers or 1,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(Client(cluster))
        if setup is not None:
            client.register_plugin(_on_every_worker(setup))
        yield DaskRunner(client)
