"""The progress bar of the commands that work instance by instance."""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

#: Least time between two redraws, in seconds.
_REDRAW = 0.1


def _drawn_bar(label: str, console: Console) -> Progress:
    """The bar itself (rich's progress module imported only for a bar drawn)."""
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

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} instances/s" if speed else "")

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        auto_refresh=False,
    )


class ProgressBar:
    """``label`` [bar] done/total, instances/s, elapsed, remaining; on ``console``.

    Drawn only when ``enabled`` (a terminal, no ``--quiet``), and only when told:
    worker processes are forked, and forking a process that runs a refresh
    thread can deadlock the child.  Not drawn, there is no bar at all: each
    instance done costs the command's process nothing (it shares the cores
    with the workers), and a failure is printed as it comes.
    """

    def __init__(self, label: str, console: Console, *, enabled: bool) -> None:
        self._console = console
        #: The bar and its task, when drawn.
        self._bar: tuple[Progress, TaskID] | None = None
        if enabled:
            progress = _drawn_bar(label, console)
            self._bar = progress, progress.add_task(label, total=None)
        self._drawn = 0.0

    def __enter__(self) -> ProgressBar:
        if self._bar is not None:
            self._bar[0].start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar[0].stop()

    def set_total(self, total: int) -> None:
        if self._bar is not None:
            progress, task = self._bar
            progress.update(task, total=total)

    def advance(self, failure: str | None = None) -> None:
        """One more instance done; ``failure`` printed above the bar when it failed."""
        if failure is not None:
            self._console.print(f"failed: {failure}", markup=False)
        if self._bar is None:
            return
        progress, task = self._bar
        progress.advance(task)
        now = time.monotonic()
        if now - self._drawn > _REDRAW:
            progress.refresh()
            self._drawn = now
