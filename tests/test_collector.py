from __future__ import annotations

import gc
import time
import weakref

import pytest

from dicomweb_archive import collector
from dicomweb_archive.collector import MAX_DELAY, MIN_INTERVAL, QUIET_SHARE, QuietCollector


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def faked(young: list[int]) -> tuple[QuietCollector, Clock, list[int]]:
    clock, collected = Clock(), []
    quiet = QuietCollector(
        clock=clock,
        cpu=lambda: 0.0,
        young_passes=lambda: young[0],
        collect=lambda: collected.append(1),
    )
    return quiet, clock, collected


def test_a_full_pass_waits_for_a_quiet_moment_or_runs_once_overdue() -> None:
    young = [3]
    quiet, clock, collected = faked(young)
    busy, calm = 0.9, QUIET_SHARE / 2
    clock.now += MIN_INTERVAL / 2
    assert quiet.tick(clock.now, calm) is None  # too soon after the last
    clock.now += MIN_INTERVAL
    assert quiet.tick(clock.now, busy) is None  # busy: not yet
    assert quiet.tick(clock.now, calm) == "quiet"
    assert collected == [1] and quiet.last == clock.now
    clock.now += MAX_DELAY - 0.1
    assert quiet.tick(clock.now, busy) is None
    clock.now += 0.2
    assert quiet.tick(clock.now, busy) == "overdue"  # never quiet: runs anyway
    assert quiet.passes == {"quiet": 1, "overdue": 1}


def test_nothing_runs_when_nothing_survived_the_young_passes() -> None:
    young = [0]
    quiet, clock, collected = faked(young)
    clock.now += 10 * MAX_DELAY
    assert quiet.tick(clock.now, 0.0) is None
    assert collected == []
    young[0] = 1
    assert quiet.tick(clock.now, 0.0) == "overdue"


def test_cpython_s_full_passes_are_off_while_any_collector_runs() -> None:
    before = gc.get_threshold()
    first = QuietCollector().start()
    second = QuietCollector().start()
    try:
        assert gc.get_threshold()[:2] == before[:2]  # young passes as they were
        assert gc.get_threshold()[2] > 10**9
        first.stop()
        first.stop()  # (a server stopped twice)
        assert gc.get_threshold()[2] > 10**9  # the other still runs
    finally:
        second.stop()
    assert gc.get_threshold() == before
    QuietCollector().stop()  # never started: nothing to give back
    assert gc.get_threshold() == before


def test_a_batch_holds_the_full_passes_off_as_long_as_it_runs() -> None:
    before = gc.get_threshold()
    with collector.full_passes_held():
        assert gc.get_threshold() == (*before[:2], collector._NEVER)
        quiet = QuietCollector().start()  # a server's, meanwhile
    assert gc.get_threshold()[2] == collector._NEVER  # the collector still runs
    quiet.stop()
    assert gc.get_threshold() == before
    with pytest.raises(OSError), collector.full_passes_held():
        raise OSError("a batch that failed")
    assert gc.get_threshold() == before


class Node:
    partner: Node | None = None


def test_a_long_lived_cycle_is_freed_by_a_quiet_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collector, "MIN_INTERVAL", 0.0)
    quiet = QuietCollector(window=0.05).start()
    try:
        a, b = Node(), Node()
        a.partner, b.partner = b, a
        gone = weakref.ref(a)
        gc.collect(1)
        gc.collect(1)  # survived the young passes: in the oldest generation now
        del a, b
        deadline = time.monotonic() + 10
        while not quiet.passes["quiet"] and time.monotonic() < deadline:
            time.sleep(0.05)  # this process quiet meanwhile
        assert quiet.passes["quiet"] >= 1
        assert gone() is None
    finally:
        quiet.stop()
