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

The marks are not derived: a study marked is one whose new row nothing else
remembers to list.  So a file found damaged (a power failure) is made anew
holding one mark for every study, :data:`EVERY_STUDY`, and the next flush
lists every study afresh from its row (as ``dwa index`` does), then forgets
it: what the lost marks stood for is listed, nothing else is lost.  A
connection follows the file when another process made it anew.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dicomweb_archive.model import paths
from dicomweb_archive.store.sqlerrors import (
    file_identity,
    opened_anew_when_damaged,
    recovered_when_damaged,
    remove_database,
)

UNLISTED_PATH = f"{paths.WORK_DIR}/unlisted.sqlite"
#: The mark standing for every study (never a UID).
EVERY_STUDY = "*"
_SCHEMA = "CREATE TABLE IF NOT EXISTS unlisted (study TEXT PRIMARY KEY, token BLOB NOT NULL)"
_MARK = "INSERT OR REPLACE INTO unlisted VALUES (?, ?)"


class UnlistedRows:
    """The marks of the archive whose work folder holds ``local`` (the
    database file), opened on first use."""

    def __init__(self, local: Path) -> None:
        self.local = local
        self._db: sqlite3.Connection | None = None
        #: Which file the connection reads (see :func:`file_identity`).
        self._identity: tuple[int, int] | None = None
        #: Whether this object dropped a damaged file not made anew yet.
        self._lost = False
        # One connection per catalog, shared by a server's threads.
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is not None and file_identity(self.local) != self._identity:
                self._close()  # made anew by another process that found it damaged
            if self._db is None:
                self.local.parent.mkdir(parents=True, exist_ok=True)
                self._db = opened_anew_when_damaged(
                    self.local, lambda: self._open(self._lost), lambda: self._open(lost=True)
                )
                self._identity, self._lost = file_identity(self.local), False
                weakref.finalize(self, self._db.close)
            yield self._db

    def _open(self, lost: bool = False) -> sqlite3.Connection:
        """A connection to the file; ``lost``: the file it replaces was
        damaged, its marks lost, and :data:`EVERY_STUDY` stands for them."""
        db = sqlite3.connect(self.local, timeout=60, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA page_size = 1024")  # of a new file: a few KB in all
            db.execute("PRAGMA journal_mode = TRUNCATE")
            db.execute("PRAGMA synchronous = OFF")
            db.execute(_SCHEMA)
            db.execute("SELECT count(*) FROM unlisted").fetchone()  # damage found here
            if lost:
                db.execute(_MARK, (EVERY_STUDY, os.urandom(8).hex().encode()))
        except BaseException:
            db.close()
            raise
        return db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
        self._db = self._identity = None

    def _drop(self) -> None:
        """Remove the damaged file (unless another process made it anew
        meanwhile): the next use makes it anew (see the module)."""
        with self._lock:
            if file_identity(self.local) == self._identity:
                remove_database(self.local)
            self._close()
            self._lost = True

    @recovered_when_damaged(UNLISTED_PATH, _drop)
    def _run(self, sql: str, *args: Any) -> list[Any]:
        with self._connection() as db:
            return db.execute(sql, args).fetchall()

    def mark(self, study: str, token: bytes) -> None:
        self._run(_MARK, study, token)

    def studies(self) -> list[str]:
        """The studies marked, :data:`EVERY_STUDY` too."""
        return [study for (study,) in self._run("SELECT study FROM unlisted")]

    def token(self, study: str) -> bytes | None:
        found = self._run("SELECT token FROM unlisted WHERE study = ?", study)
        return bytes(found[0][0]) if found else None

    def forget(self, study: str, token: bytes) -> None:
        """Forget the mark of ``study`` if it still holds ``token``."""
        self._run("DELETE FROM unlisted WHERE study = ? AND token = ?", study, token)
