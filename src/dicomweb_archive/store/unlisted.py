"""Which studies' rows the archive's study list does not show yet: rows in SQLite.

A refresh of a study's documents marks the study *unlisted* with a fresh token
(under its refresh lock); the flush that lists its new row reads the token with
the row and forgets the mark only if the token is still that one, so a refresh
in between keeps it (see :mod:`~dicomweb_archive.store.journal`).

On a store with local files the marks are rows of ``.dwa/unlisted.sqlite``,
not a file per study: a file made by every refresh and deleted by every flush
costs a file creation (up to a few hundred µs on ext4 without a journal after
many deletions) and frees an inode that makes the next file creations nearby
dearer still (the allocator skips each recently freed inode it finds), for
every study written.  Each mark and each forgetting is one transaction: it
survives a killed process as a file would.  No fsync (a few hundred µs each,
on every write): like the marker files, which are renamed into place without
one, a mark may be lost to a power failure or a crash of the system, and
then the study list shows that study's row once the study is written again
or ``dwa index`` lists every study afresh.  The rollback journal is emptied
after each transaction, not made and deleted.  Marks left as files in
``.dwa/unlisted/`` by earlier versions are read and forgotten alike.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

from dicomweb_archive.model import paths
from dicomweb_archive.store.sqlerrors import os_errors

UNLISTED_PATH = f"{paths.WORK_DIR}/unlisted.sqlite"
_os_errors = os_errors(UNLISTED_PATH)
_SCHEMA = "CREATE TABLE IF NOT EXISTS unlisted (study TEXT PRIMARY KEY, token BLOB NOT NULL)"


class UnlistedRows:
    """The marks of the archive whose work folder holds ``local`` (the
    database file), opened on first use."""

    def __init__(self, local: Path) -> None:
        self.local = local
        self._db: sqlite3.Connection | None = None
        # One connection per catalog, shared by a server's threads.
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                self.local.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(
                    self.local, timeout=60, isolation_level=None, check_same_thread=False
                )
                db.execute("PRAGMA page_size = 1024")  # of a new file: a few KB in all
                db.execute("PRAGMA journal_mode = TRUNCATE")
                db.execute("PRAGMA synchronous = OFF")
                db.execute(_SCHEMA)
                self._db = db
                weakref.finalize(self, db.close)
            yield self._db

    @_os_errors
    def mark(self, study: str, token: bytes) -> None:
        with self._connection() as db:
            db.execute("INSERT OR REPLACE INTO unlisted VALUES (?, ?)", (study, token))

    @_os_errors
    def studies(self) -> list[str]:
        with self._connection() as db:
            return [study for (study,) in db.execute("SELECT study FROM unlisted")]

    @_os_errors
    def token(self, study: str) -> bytes | None:
        with self._connection() as db:
            found = db.execute("SELECT token FROM unlisted WHERE study = ?", (study,)).fetchone()
        return None if found is None else bytes(found[0])

    @_os_errors
    def forget(self, study: str, token: bytes) -> None:
        """Forget the mark of ``study`` if it still holds ``token``."""
        with self._connection() as db:
            db.execute("DELETE FROM unlisted WHERE study = ? AND token = ?", (study, token))
