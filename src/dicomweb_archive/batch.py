"""Batches: one task per item on worker processes, and what became of each item.

The converter (one P10 input per task) and the transcoder (one archived instance
per task) share this.  A task never raises for its item: :func:`failure_of` is
the one place an exception becomes a refusal or a failure with a reason, so one
bad item stops nothing, and :class:`Summary` counts the outcomes.  A
:class:`Runner` says where tasks run: :class:`~dicomweb_archive.pool.PoolRunner`
on this machine's cores, :class:`~dicomweb_archive.cluster.DaskRunner` on a Dask cluster.
"""

from __future__ import annotations

import errno
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

#: What a runner answers for an item whose task was lost with its worker, given
#: the item and why (it never ran to the end, so the task could not say).
Lost = Callable[[Item, str], Result]
#: Why a runner could not do an item that killed every worker it ran on.
LOST_REASON = "its worker died each time it ran, the last time alone"


class Runner(Protocol):
    """Runs one task per item somewhere and yields the results as they finish."""

    @property
    def workers(self) -> int:
        """How many tasks run at once."""
        ...

    @property
    def local(self) -> bool:
        """Whether every task runs on this machine, in this process's file
        system and environment (what it writes to an archive's work area, this
        process sees there); a cluster's workers may run elsewhere."""
        ...

    def map(
        self, task: Callable[[Item], Result], items: Sequence[Item], lost: Lost[Item, Result]
    ) -> Iterator[Result]: ...


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
