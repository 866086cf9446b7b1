"""The catalog's journal: which studies' derived documents are behind their instances.

Two kinds of marker files in the archive's work folder, one per study:

``.dwa/stale/{study}``
    Written (with a fresh token, under the study's shared lock) by a writer that
    stored an instance and left the study's documents (series and study
    metadata, QIDO-RS documents, the SQLite index rows) to be refreshed later.
    A refresh reads the token before it reads the instances and removes the
    marker once the documents and the index rows are written, under the study's
    exclusive lock and only if the token is unchanged: an instance committed
    before the token was read is in what it wrote, and one committed since has
    left a new token.  So a reader that finds no marker finds every committed
    instance.
``.dwa/unlisted/{study}``
    Written (with a fresh token) by every refresh of a study's documents, under
    its refresh lock: the archive's study list does not show the study's new row
    yet.  Removed after the study list was rewritten, under that lock again and
    only if the token is still the one read with the row, so a refresh in
    between keeps its marker.  On a store with local files these marks are
    rows of a small SQLite database instead
    (:mod:`~dicomweb_archive.store.unlisted`), not a file made and deleted for
    every study written.

A marker outlives a killed process: the next flush (``dwa convert``, ``dwa
index``, the server) finishes the job.

A marker file still there when it is written again (a study marked twice
before its refresh) gets its new token written over the old one, in the same
file: no file is made and none freed, which on ext4 without a journal makes
every later file creation nearby cheaper (the allocator skips each recently
freed inode it finds).  Tokens have one size, so a reader sees the old token,
the new one or, reading the very moment it is written, a mix of both; a mix
matches neither, so it only keeps the marker for the next flush.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from dicomweb_archive import uids
from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.unlisted import EVERY_STUDY, UNLISTED_PATH, UnlistedRows

STALE = f"{paths.WORK_DIR}/stale"
UNLISTED = f"{paths.WORK_DIR}/unlisted"
CHANGED = f"{paths.WORK_DIR}/changed"
#: The name standing for every instance of a study.
_EVERY = "*"
_SEP = "~"
#: Between the row's token and the file's in :meth:`Journal.token` (never in a token).
_BOTH = b"|"
#: Never through a link, nor waiting for a reader (a FIFO: written whole instead).
_OVERWRITE_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class Changes:
    """The instances of a study named changed, as a refresh listed them."""

    #: The marker files listed (removed once the study is current).
    names: tuple[str, ...] = ()
    #: (series, SOP instance) of each instance named; None: any may have
    #: changed (a writer that did not name them, or no names at all).
    instances: frozenset[tuple[str, str]] | None = None


class Journal:
    """The markers of ``archive``; see the module."""

    def __init__(self, archive: Archive) -> None:
        self.store = archive.store
        local = self.store.local_path(UNLISTED_PATH)
        #: The unlisted marks as rows (None: as files, on a store without local files).
        self.rows = None if local is None else UnlistedRows(local)

    def _studies(self, folder: str) -> list[str]:
        try:
            entries = self.store.list(folder)
        except ResourceNotFoundError:
            return []
        return sorted(e.name for e in entries if not e.is_folder and uids.is_valid_uid(e.name))

    # -- documents behind their instances -------------------------------------------

    def mark_stale(self, study: str, instances: Iterable[tuple[str, str]] | None = None) -> None:
        """The study's documents are behind: behind ``instances`` (series and
        SOP instance UIDs, stored by the caller) only, or any (None)."""
        token = os.urandom(8).hex()
        named = [_EVERY] if instances is None else [f"{se}{_SEP}{sop}" for se, sop in instances]
        for name in named:
            self.store.write(f"{CHANGED}/{study}/{name}{_SEP}{token}", b"")
        self._write_token(f"{STALE}/{study}", token.encode())

    def is_stale(self, study: str) -> bool:
        return self.store.exists(f"{STALE}/{study}")

    def stale(self) -> list[str]:
        return self._studies(STALE)

    def stale_token(self, study: str) -> bytes | None:
        return self._token(f"{STALE}/{study}")

    def changes(self, study: str) -> Changes:
        """The instances named changed (listed after the stale token was read)."""
        try:
            entries = self.store.list(f"{CHANGED}/{study}")
        except ResourceNotFoundError:
            return Changes()
        names = tuple(entry.name for entry in entries if not entry.is_folder)
        instances: set[tuple[str, str]] = set()
        for name in names:
            series, _, sop = name.rpartition(_SEP)[0].partition(_SEP)
            if not (uids.is_valid_uid(series) and uids.is_valid_uid(sop)):
                return Changes(names)  # every instance, or a name not understood
            instances.add((series, sop))
        return Changes(names, frozenset(instances) if names else None)

    def clear_stale(self, study: str, token: bytes | None, changes: Changes = Changes()) -> None:
        """The documents read with ``token`` and ``changes`` are written (the
        study's lock held)."""
        if token is not None and self.stale_token(study) == token:
            # Nobody marked the study since the token was read: every name was listed.
            if changes.names:
                self.store.remove_tree(f"{CHANGED}/{study}")
            self.store.remove(f"{STALE}/{study}")
            return
        for name in changes.names:
            self.store.remove(f"{CHANGED}/{study}/{name}")

    # -- the study list behind the studies' rows ---------------------------------------

    def mark_unlisted(self, study: str) -> None:
        """The study's row changed (its refresh lock held)."""
        token = os.urandom(8).hex().encode()
        if self.rows is not None:
            self.rows.mark(study, token)
        else:
            self._write_token(f"{UNLISTED}/{study}", token)

    def unlisted(self) -> list[str]:
        # Files too: left by an earlier version, or the only marks in memory.
        files = self._studies(UNLISTED)
        if self.rows is None:
            return files
        return sorted({*files, *self.rows.studies()} - {EVERY_STUDY})

    def relisting(self) -> bytes | None:
        """The token of the mark standing for every study (None: none): marks
        were lost with a damaged file, every study is to be listed afresh."""
        return None if self.rows is None else self.rows.token(EVERY_STUDY)

    def relisted(self, token: bytes) -> None:
        """Every study was listed afresh after ``token`` was read."""
        if self.rows is not None:
            self.rows.forget(EVERY_STUDY, token)

    def token(self, study: str) -> bytes | None:
        """The study's mark: its row's token and its file's, if any (None: not marked)."""
        in_file = self._token(f"{UNLISTED}/{study}")
        if self.rows is None:
            return in_file
        in_row = self.rows.token(study)
        if in_row is None and in_file is None:
            return None
        return (in_row or b"") + _BOTH + (in_file or b"")

    def clear_unlisted(self, study: str, token: bytes | None) -> None:
        """The study list shows the row read with ``token`` (the study's lock held)."""
        if token is None:
            return
        if self.rows is None:
            if self.token(study) == token:
                self.store.remove(f"{UNLISTED}/{study}")
            return
        in_row, _, in_file = token.partition(_BOTH)
        if in_row:
            self.rows.forget(study, in_row)
        if in_file and self._token(f"{UNLISTED}/{study}") == in_file:
            self.store.remove(f"{UNLISTED}/{study}")

    def _write_token(self, path: str, token: bytes) -> None:
        """The marker ``path`` holds ``token``: written over the one there (see
        the module), else a new file."""
        local = self.store.local_path(path)
        if local is not None:
            try:
                fd = os.open(local, _OVERWRITE_FLAGS)
            except OSError:  # none yet (or not a plain file): written whole below
                pass
            else:
                try:
                    if os.fstat(fd).st_size == len(token) and os.pwrite(fd, token, 0) == len(token):
                        return
                finally:
                    os.close(fd)
        self.store.write(path, token)

    def _token(self, path: str) -> bytes | None:
        try:
            return self.store.read(path)
        except ResourceNotFoundError:
            return None
