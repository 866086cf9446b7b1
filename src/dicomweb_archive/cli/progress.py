"""The progress bar of the commands that work instance by instance."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

#: Least time between two redraws, in seconds.
_REDRAW = 0.1


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} instances/s" if speed else "")


class ProgressBar:
    """``label`` [bar] done/total, instances/s, elapsed, remaining; on ``console``.

    Drawn only when ``enabled`` (a terminal, no ``--quiet``), and only when told:
    worker processes are forked, and forking a process that runs a refresh
    thread can deadlock the child.
    """

    def __init__(self, label: str, console: Console, *, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
            transient=True,
            auto_refresh=False,
        )
        self._task = self._progress.add_task(label, total=None)
        self._drawn = 0.0

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def set_total(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def advance(self, failure: str | None = None) -> None:
        """One more instance done; ``failure`` printed above the bar when it failed."""
        self._progress.advance(self._task)
        if failure is not None:
            self._progress.console.print(f"failed: {failure}", markup=False)
        now = time.monotonic()
        if now - self._drawn > _REDRAW:
            self._progress.refresh()
            self._drawn = now
