"""The write-behind flusher: deferred writes (STOW-RS, C-STORE) caught up in batches.

STOW-RS and C-STORE answer once their instances are committed and their studies
marked stale (:meth:`~dicomweb_archive.store.catalog.Catalog.defer`).  This thread flushes the
catalog (documents, SQLite index, study list) at most every :data:`FLUSH_DELAY`
seconds, and waits at least :data:`IDLE_SHARE` times as long as its last flush
took, so catching up uses a bounded share of a core however large the studies
and the archive grow.  A flush that fails is retried at the next turn; the last
one runs as the server (``dwa serve``, ``dwa listen``) stops.
"""

from __future__ import annotations

import logging
import threading
import time

from dicomweb_archive.store.catalog import Catalog

logger = logging.getLogger(__name__)

#: Seconds between flushes, at least.
FLUSH_DELAY = 1.0
#: Idle time after a flush, in multiples of the time the flush took.
IDLE_SHARE = 4.0


class Flusher:
    """A daemon thread flushing ``catalog`` until :meth:`stop`."""

    def __init__(self, catalog: Catalog, delay: float = FLUSH_DELAY) -> None:
        self.catalog = catalog
        self.delay = delay
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="catalog-flusher", daemon=True)

    def start(self) -> Flusher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        wait = 0.0  # at start-up: catch up with what a killed server left
        while not self._stopped.wait(wait):
            wait = self._turn()
        self._turn()  # and before the server exits

    def _turn(self) -> float:
        """Flush if anything is behind; returns the time to wait before the next turn."""
        started = time.perf_counter()
        try:
            journal = self.catalog.journal
            if journal.stale() or journal.unlisted() or journal.relisting() is not None:
                self.catalog.flush()
        except Exception:  # the next turn retries; the markers stay
            logger.exception("flushing the catalog failed")
        return max(self.delay, IDLE_SHARE * (time.perf_counter() - started))
