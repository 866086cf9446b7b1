"""Tasks on this machine's worker processes: every item once, a dying worker
costs only the item that kills it."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
from collections.abc import Generator
from pathlib import Path

import pytest

from dicomweb_archive import pool
from dicomweb_archive.batch import LOST_REASON
from dicomweb_archive.errors import WorkerError
from dicomweb_archive.pool import PoolRunner, run_tasks, worker_count
from tests.tasks import CULPRIT, die_on_culprit, never, pid, square


def _frozen(_: int) -> int:
    return gc.get_freeze_count()


def _negated(item: int, reason: str) -> int:
    assert reason == LOST_REASON
    return -item


def test_worker_count_defaults_to_every_core() -> None:
    assert worker_count(3) == 3
    assert worker_count(None) == max(1, os.cpu_count() or 1)
    assert worker_count(0) == max(1, os.cpu_count() or 1)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_run_tasks_does_every_item_once(workers: int) -> None:
    done = sorted(run_tasks(square, list(range(500)), workers, never))
    assert done == [n * n for n in range(500)]


def test_one_worker_runs_in_this_process() -> None:
    assert set(run_tasks(pid, [1, 2, 3], 1, never)) == {os.getpid()}
    # A single item needs no pool, whatever the worker count.
    assert list(run_tasks(pid, [1], 4, never)) == [os.getpid()]


def test_several_workers_run_elsewhere() -> None:
    pids = set(run_tasks(pid, list(range(64)), 2, never))
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_pool_workers_leave_what_they_start_with_out_of_collections() -> None:
    assert all(count > 0 for count in run_tasks(_frozen, [1, 2, 3, 4], 2, never))


def test_no_items_no_results() -> None:
    assert list(run_tasks(square, [], 4, never)) == []


def test_an_item_that_kills_its_worker_is_reported_the_rest_done_once() -> None:
    done = list(PoolRunner(2).map(die_on_culprit, list(range(300)), _negated))
    assert sorted(done) == sorted([-CULPRIT, *(n for n in range(300) if n != CULPRIT)])
    assert len(done) == len(set(done))  # each item answered once


def test_a_lone_item_that_kills_its_worker_is_reported() -> None:
    assert sorted(run_tasks(die_on_culprit, [CULPRIT, 1], 2, _negated)) == [-CULPRIT, 1]


class _KilledOnce:
    """Kills its worker at ``item``, the first time only (a worker killed from outside)."""

    def __init__(self, marker: Path, item: int) -> None:
        self.marker = marker
        self.item = item

    def __call__(self, number: int) -> int:
        if number == self.item and not self.marker.exists():
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return number


def test_a_worker_killed_from_outside_loses_nothing(tmp_path: Path) -> None:
    task = _KilledOnce(tmp_path / "killed", 150)
    assert sorted(run_tasks(task, list(range(300)), 2, never)) == list(range(300))
    assert (tmp_path / "killed").exists()


def test_stopping_early_stops_the_pool() -> None:
    results = run_tasks(pid, list(range(1000)), 2, never)
    worker = next(results)
    results.close()  # the pool shut down with its generator
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)


def test_keep_freed_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set where glibc's malloc is (the machines tested; in a process of its own,
    not this one's); nothing, and False, elsewhere."""
    code = "from dicomweb_archive.pool import keep_freed_memory; assert keep_freed_memory()"
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
    )

    class NoMallopt:
        def __init__(self, name: object) -> None:
            pass

    monkeypatch.setattr(pool.ctypes, "CDLL", NoMallopt)
    assert not pool.keep_freed_memory()


def _crash() -> None:
    os._exit(3)  # a worker that dies as it starts


def test_workers_that_die_as_they_start_lose_their_items_without_a_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool.gc, "freeze", _crash)  # the workers' initializer, forked
    assert sorted(run_tasks(square, [1, 2, 3], 2, _negated)) == [-3, -2, -1]


def test_pools_that_never_take_a_task_end_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def unused(task: object, waiting: object, workers: int) -> Generator[int, None, list[int]]:
        return []
        yield 0  # a generator, as the pool's runs are

    monkeypatch.setattr(pool, "_run_pool", unused)
    with pytest.raises(WorkerError, match="3 pools of worker processes in a row died unused"):
        list(run_tasks(square, [1, 2, 3], 2, never))
