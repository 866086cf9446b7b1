"""The garbage collector's full passes taken at quiet moments, in long-running servers.

CPython's cyclic collector walks every object it tracks in a full (generation
2) pass, holding the GIL.  A server keeps many instances' metadata between
refreshes (the catalog's views, :mod:`~dicomweb_archive.store.recall`): about
70 tracked objects per instance, 355,000 for one study of 5,000 small
instances, whose full pass took 0.3-1 s.  CPython starts one whenever the
objects that survived its young passes grew by a quarter, from whichever
thread allocated last: a STOW-RS request or a frame waited for it (one of 20
requests at 670 ms where the others took 6-15 ms).

:class:`QuietCollector` leaves the young generations to CPython (their passes
walk new objects only) and takes the full passes over: one runs when young
passes happened since the last one and the process used less than
:data:`QUIET_SHARE` of a core during the last :data:`WINDOW` seconds, at most
every :data:`MIN_INTERVAL` seconds; and in any case :data:`MAX_DELAY` seconds
after the last, so that under sustained load reference cycles are still
freed.  Garbage that is not in a cycle is freed at once as always; cycles
among new objects are freed by the young passes; what waits for a full pass is
only what lived long and then died in a cycle (instances a cache let go).
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator
from typing import Final

#: Seconds over which the process's CPU use is measured.
WINDOW: Final = 1.0
#: Share of one core below which the process counts as quiet.
QUIET_SHARE: Final = 0.05
#: Seconds between full passes at quiet moments, at least.
MIN_INTERVAL: Final = 5.0
#: Seconds after which a full pass runs even if the process never went quiet.
MAX_DELAY: Final = 60.0
#: A generation-2 threshold CPython never reaches: its own full passes off.
_NEVER: Final = 2**31 - 1

_taken = 0
_thresholds: tuple[int, int, int] | None = None
_guard = threading.Lock()


def _take_over() -> None:
    """Turn CPython's full passes off (once for every collector running)."""
    global _taken, _thresholds
    with _guard:
        if _taken == 0:
            _thresholds = gc.get_threshold()
            gc.set_threshold(_thresholds[0], _thresholds[1], _NEVER)
        _taken += 1


def _hand_back() -> None:
    """Give CPython its full passes back when the last collector stops."""
    global _taken, _thresholds
    with _guard:
        _taken -= 1
        if _taken == 0 and _thresholds is not None:
            gc.set_threshold(*_thresholds)
            _thresholds = None


@contextlib.contextmanager
def full_passes_held() -> Iterator[None]:
    """CPython's full passes off while the block runs, back after (unless a
    :class:`QuietCollector` still holds them).

    For a batch that keeps nearly all it makes (a catalog's refresh): each
    full pass as its objects grew by a quarter walked everything made so far.
    The young passes go on; what the batch made is walked in full once, by
    the first full pass after it.
    """
    _take_over()
    try:
        yield
    finally:
        _hand_back()


class QuietCollector:
    """A daemon thread running the collector's full passes at quiet moments
    until :meth:`stop`; see the module."""

    def __init__(
        self,
        *,
        window: float = WINDOW,
        cpu: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
        young_passes: Callable[[], int] = lambda: gc.get_count()[2],
        collect: Callable[[], object] = gc.collect,
    ) -> None:
        self.window = window
        self._cpu, self._clock = cpu, clock
        self._young_passes, self._collect = young_passes, collect
        self.last = clock()
        #: Full passes run so far (quiet, and overdue).
        self.passes = {"quiet": 0, "overdue": 0}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="quiet-collector", daemon=True)

    def start(self) -> QuietCollector:
        _take_over()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop (again: nothing more), CPython's full passes back if no other runs."""
        if self._stopped.is_set() or not self._thread.is_alive():
            return
        self._stopped.set()
        self._thread.join()
        _hand_back()

    def due(self, now: float, share: float) -> str | None:
        """Why a full pass is due now, given the share of a core used during
        the last window (None: not due)."""
        if not self._young_passes():
            return None  # nothing survived the young passes since the last
        waited = now - self.last
        if waited >= MAX_DELAY:
            return "overdue"
        if waited >= MIN_INTERVAL and share < QUIET_SHARE:
            return "quiet"
        return None

    def tick(self, now: float, share: float) -> str | None:
        """Run a full pass if one is due; returns why it ran (None: it did not)."""
        reason = self.due(now, share)
        if reason is not None:
            self._collect()
            self.last = self._clock()
            self.passes[reason] += 1
        return reason

    def _run(self) -> None:
        cpu, wall = self._cpu(), self._clock()
        while not self._stopped.wait(self.window):
            now_cpu, now = self._cpu(), self._clock()
            share = (now_cpu - cpu) / max(now - wall, 1e-9)
            self.tick(now, share)
            cpu, wall = self._cpu(), self._clock()  # the pass itself not counted
