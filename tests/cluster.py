"""A real Dask cluster of separate processes on loopback, for the tests.

``dask scheduler`` and ``dask worker`` processes (each worker under its nanny,
which starts it again when it dies), on free ports, with this checkout's
sources first on their path.  Stopped, every process of it, at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from tests import ports
from tests.objectstore import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).parent / "dask"
#: A task whose worker died this many times more is given up (KilledWorker):
#: the scheduler's default is 3; 0 keeps the tests that kill workers short and
#: makes the runner's own retries (split chunks, second tries) do the work.
ALLOWED_FAILURES = 0


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    path = [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
    env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = str(ALLOWED_FAILURES)
    env["DASK_LOGGING__DISTRIBUTED"] = "error"
    return env


class DaskCluster:
    """``dask scheduler`` and ``workers`` ``dask worker`` processes; see the module."""

    def __init__(self, workers: int, log: Path) -> None:
        self.log = log
        self.processes: list[subprocess.Popen[bytes]] = []
        # Port 0: the scheduler takes a free port itself, and writes its address
        # to the scheduler file once it listens.
        scheduler_file = log.with_name(f"{log.name}.scheduler.json")
        scheduler_file.unlink(missing_ok=True)
        self._start(
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", str(scheduler_file),
        )  # fmt: skip

        def said() -> str:
            return scheduler_file.read_text() if scheduler_file.exists() else ""

        pattern = r'"address": "(tcp://127\.0\.0\.1:\d+)"'
        try:
            self.address = ports.announced(pattern, self.processes[0], said)[1]
        except BaseException:
            self.stop()
            raise
        for _ in range(workers):
            self._start(
                "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard"
            )

    def _start(self, *args: str) -> None:
        with open(self.log, "ab") as out:
            self.processes.append(
                subprocess.Popen(
                    [str(DASK), *args],
                    env=_environment(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    # A test run that is killed must not leave the cluster running.
                    preexec_fn=die_with_parent,
                )
            )

    def client(self, workers: int) -> Any:
        """A client of the cluster once ``workers`` workers are up."""
        from distributed import Client

        client = Client(self.address, timeout=30)
        client.wait_for_workers(workers, timeout=60)
        return client

    def worker_pids(self, client: Any) -> list[int]:
        """The worker processes (not their nannies) now."""
        return sorted(client.run(os.getpid).values())

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one worker process, as the kernel's out-of-memory killer would."""
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        for process in reversed(self.processes):
            with contextlib.suppress(psutil.NoSuchProcess):
                children = psutil.Process(process.pid).children(recursive=True)
                process.terminate()
                for child in children:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        child.terminate()
        deadline = time.monotonic() + 10
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def dask_cluster(workers: int, log: Path) -> Iterator[DaskCluster]:
    cluster = DaskCluster(workers, log)
    try:
        yield cluster
    finally:
        cluster.stop()
