"""C-STORE data sets received into files, never whole in memory.

Each data set a peer sends is written to a file of its own as its fragments
arrive: the P10 file the request makes (preamble, ``DICM``, the File Meta
Information of the request and its presentation context, then the data set as
the peer encoded it).  The C-STORE handler stores from that file, reading the
Pixel Data a frame at a time as ``dwa convert`` does, then removes it: memory
per association stays about a fragment and a frame, whatever the data set's size.

The files are in a folder of the listener's own (``c-store-*``) in the
archive's scratch folder: ``ARCHIVE/.dwa/tmp``, on the archive's file system;
for an archive in an object store, its local work area (``$DWA_WORK_DIR``).
None outlives what it was received for:

- stored or refused: the handler removes it;
- the association ended before it was stored (aborted mid-transfer, the peer
  gone): removed when the connection closes;
- the listener stopped: its folder goes;
- the listener killed: its folder is locked (``flock``) only while it runs,
  and the next listener on the same scratch folder removes every folder no
  running listener holds.

A write that fails (a full disk), or a data set past the size limit, stops the
writing and frees the file at once: the rest of the data set is read and
dropped, and the handler answers with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger("dicomweb_archive.dimse")

#: How the folder of each listener's received data sets is named.
FOLDER_PREFIX = "c-store-"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class Receipt:
    """One data set being received: its file, or why it is not kept.

    pynetdicom writes each fragment with :meth:`write` and flushes ``file``
    after it (its temporary file's interface); it closes the receipt and
    removes ``name`` once the handler returned.
    """

    def __init__(self, path: Path, head: bytes, limit: int | None) -> None:
        self.path = path
        self.name = str(path)
        #: The largest data set kept (bytes after the File Meta Information).
        self.limit = limit
        #: Bytes of the data set received so far (kept or not).
        self.size = 0
        #: The write that failed, if one did.
        self.error: OSError | None = None
        self._fd: int | None = None
        try:
            self._fd = os.open(path, _CREATE, 0o600)
            self._write(head)
        except OSError as exc:
            self._fail(exc)

    @property
    def too_large(self) -> bool:
        return self.limit is not None and self.size > self.limit

    @property
    def kept(self) -> bool:
        """Whether the file holds every byte received so far."""
        return self.error is None and not self.too_large

    @property
    def file(self) -> Receipt:
        return self

    def flush(self) -> None:
        """Nothing to do: each fragment is written as it comes, unbuffered."""

    def write(self, data: bytes) -> int:
        """Append a fragment of the data set; dropped once the receipt is not kept."""
        self.size += len(data)
        if self._fd is None:
            return len(data)
        if self.too_large:
            self._fail(None)
            return len(data)
        try:
            self._write(data)
        except OSError as exc:
            self._fail(exc)
        return len(data)

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def _fail(self, error: OSError | None) -> None:
        """Stop writing and free the file (a full disk gets its space back now)."""
        if error is not None:
            self.error = error
        self.discard()

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def discard(self) -> None:
        """Close and remove the file (no error if it is gone already)."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class Receipts:
    """The files of one listener's received data sets, in a folder of its own.

    ``limit`` is the largest data set kept (None: no limit).  Each receipt is
    held for the association it arrives on until its handler takes it.
    """

    def __init__(self, scratch: Path, limit: int | None = None) -> None:
        self.limit = limit
        scratch.mkdir(parents=True, exist_ok=True)
        # The scratch folder is locked while a listener removes stale folders
        # or makes its own: none removes another's new folder before it is locked.
        with _locked(scratch):
            remove_stale(scratch)
            self.folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=scratch))
            self._lock_fd: int | None = os.open(self.folder, _DIRECTORY)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._held: dict[str, tuple[object, Receipt]] = {}
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)

    def open(self, association: object, head: bytes) -> Receipt:
        """A new receipt for a data set arriving on ``association``, ``head`` written."""
        receipt = Receipt(self.folder / f"{next(self._numbers)}.dcm", head, self.limit)
        with self._lock:
            self._held[receipt.name] = (association, receipt)
        return receipt

    def take(self, path: str | os.PathLike[str]) -> Receipt | None:
        """The receipt at ``path``, now the caller's to discard; None if it is gone."""
        with self._lock:
            found = self._held.pop(os.fspath(path), None)
        return found[1] if found is not None else None

    def discard(self, association: object) -> int:
        """Remove the receipts of ``association`` no handler took; how many there were."""
        with self._lock:
            gone = [name for name, (owner, _) in self._held.items() if owner is association]
            receipts = [self._held.pop(name)[1] for name in gone]
        for receipt in receipts:
            receipt.discard()
        return len(receipts)

    def held(self) -> list[Path]:
        """The files in the folder now (none once every data set is stored)."""
        return sorted(path for path in self.folder.iterdir() if path.is_file())

    def close(self) -> None:
        """Remove the folder and everything in it (once; closing again does nothing)."""
        with self._lock:
            receipts = [receipt for _, receipt in self._held.values()]
            self._held.clear()
            fd, self._lock_fd = self._lock_fd, None
        for receipt in receipts:
            receipt.discard()
        if fd is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            os.close(fd)


def remove_stale(scratch: Path) -> int:
    """Remove the folders of listeners that are not running; how many there were."""
    removed = 0
    for entry in sorted(scratch.glob(f"{FOLDER_PREFIX}*")):
        try:
            fd = os.open(entry, _DIRECTORY)
        except OSError:  # gone, or not a folder
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a running listener's
            continue
        finally:
            os.close(fd)
        files = sum(1 for path in entry.iterdir() if path.is_file())
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
        logger.warning(
            "removed %s: %d data sets a listener that did not stop was receiving", entry, files
        )
    return removed


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    fd = os.open(folder, _DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
