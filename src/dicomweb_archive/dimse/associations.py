"""One log line per association: who, and what it did; and why one was rejected.

pynetdicom's own log (a dozen lines per message) is kept at warnings; these
lines say what an operator needs: the calling AE and its address, the outcome,
and the counts of what the association did (stored, failed, found, sent).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dicomweb_archive.dimse.config import ListenConfig

logger = logging.getLogger("dicomweb_archive.dimse")


def peer_of(assoc: Any) -> str:
    """``AE@host:port`` of the association's requestor."""
    requestor = assoc.requestor
    return f"{str(requestor.ae_title).strip()}@{requestor.address}:{requestor.port}"


#: Refused presentation contexts named in an association's line, at most.
_NAMED_REFUSALS = 3


def _refused(contexts: list[Any]) -> str:
    """``; N refused: UID (why), …``: what a peer asked for and cannot have."""
    if not contexts:
        return ""
    named = ", ".join(
        f"{cx.abstract_syntax} ({str(cx.status).lower()})" for cx in contexts[:_NAMED_REFUSALS]
    )
    more = f" and {len(contexts) - _NAMED_REFUSALS} more" if len(contexts) > _NAMED_REFUSALS else ""
    return f"; {len(contexts)} refused: {named}{more}"


@dataclass
class Activity:
    """What one association did so far."""

    number: int
    peer: str
    started: float = field(default_factory=time.monotonic)
    counts: Counter[str] = field(default_factory=Counter)


class Associations:
    """The associations served so far, numbered in the order they arrived."""

    def __init__(self, config: ListenConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._numbered = 0
        self._open: dict[int, Activity] = {}

    def of(self, assoc: Any) -> Activity:
        """The activity of ``assoc``, begun at its first event."""
        with self._lock:
            found = self._open.get(id(assoc))
            if found is None:
                self._numbered += 1
                found = self._open[id(assoc)] = Activity(self._numbered, peer_of(assoc))
            return found

    def count(self, assoc: Any, what: str, number: int = 1) -> None:
        activity = self.of(assoc)
        with self._lock:
            activity.counts[what] += number

    def accepted(self, event: Any) -> None:
        activity = self.of(event.assoc)
        contexts = len(event.assoc.accepted_contexts)
        called = str(event.assoc.acceptor.ae_title).strip()
        logger.info(
            "association %d from %s accepted (called AE %s, %d presentation contexts%s)",
            activity.number,
            activity.peer,
            called,
            contexts,
            _refused(event.assoc.rejected_contexts),
        )

    def rejected(self, event: Any) -> None:
        """Log the reason, as pynetdicom decided it (see its ACSE negotiation)."""
        assoc = event.assoc
        calling = str(assoc.requestor.ae_title).strip()
        if self.config.allowed_calling and calling not in self.config.allowed_calling:
            reason = f"calling AE title {calling!r} is not on the allow-list"
        else:
            reason = f"more than {self.config.max_associations} associations at once"
        with self._lock:
            self._open.pop(id(assoc), None)
        logger.warning("association from %s rejected: %s", peer_of(assoc), reason)

    def ended(self, event: Any, how: str) -> None:
        """Log one line when an association is released or aborted."""
        with self._lock:
            activity = self._open.pop(id(event.assoc), None)
        if activity is None:  # rejected, or ended before it was accepted
            return
        done = ", ".join(f"{n} {what}" for what, n in sorted(activity.counts.items()))
        logger.info(
            "association %d from %s %s after %.1f s%s",
            activity.number,
            activity.peer,
            how,
            time.monotonic() - activity.started,
            f": {done}" if done else "",
        )
