"""Tasks on a real Dask cluster: two workers, each a separate process (tests/cluster.py)."""

from __future__ import annotations

import os
import warnings
from typing import Any

import pytest

from dicomweb_archive.cluster import DaskRunner, chunk_size, connect
from dicomweb_archive.errors import ClusterError
from tests import ports
from tests.tasks import CULPRIT, die_on_culprit, never, pid, square


def test_chunks_spread_a_run_over_every_worker() -> None:
    assert chunk_size(10, 2) == 1
    assert chunk_size(800, 2) == 32  # at most MAX_CHUNK
    assert chunk_size(200, 2) == 25  # four tasks per worker at least


def test_every_item_once_on_both_workers(dask_client: Any) -> None:
    runner = DaskRunner(dask_client)
    assert runner.workers == 2
    assert sorted(runner.map(square, list(range(300)), never)) == [n * n for n in range(300)]
    pids = set(runner.map(pid, list(range(40)), never))
    assert len(pids) == 2 and os.getpid() not in pids
    assert list(runner.map(square, [], never)) == []


def test_an_item_that_kills_its_worker_is_reported_the_rest_done(
    dask_cluster: Any, dask_client: Any
) -> None:
    runner = DaskRunner(dask_client)
    before = dask_cluster.worker_pids(dask_client)

    def lost(item: int, reason: str) -> int:
        assert reason == "its worker died each time it ran, the last time alone"
        return -item

    done = sorted(runner.map(die_on_culprit, list(range(12)), lost))
    assert done == sorted([-CULPRIT, *(n for n in range(12) if n != CULPRIT)])
    # The nannies started the dead workers again.
    dask_client.wait_for_workers(2, timeout=60)
    assert dask_cluster.worker_pids(dask_client) != before


def test_a_scheduler_that_is_not_there_is_an_error() -> None:
    with ports.reserved_port() as port:  # refused: nothing can listen there meanwhile
        address = f"tcp://127.0.0.1:{port}"
        with (
            warnings.catch_warnings(),
            pytest.raises(ClusterError, match=f"cannot reach the Dask scheduler at {address}"),
            connect(address, timeout=1),
        ):
            pass
