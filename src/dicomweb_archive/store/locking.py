"""The named locks of a folder store: bytes of one file, locked by open file description.

Writers lock a study (``study-{uid}``), its refresh (``refresh-{uid}``), an
instance's bucket, the study list..., shared or exclusive, across every
process using the folder.  Each name is one byte of ``.dwa/locks/names``, at
an offset given by a 62-bit hash of the name, locked with Linux's open file
description locks (``F_OFD_SETLKW``): every :meth:`FolderLocks.lock` opens the
file anew, so two holders conflict exactly as two ``flock`` calls on two
openings of a file of their own would, threads of one process included, and
closing the opening releases its lock, as a killed process's are.

No file per name: a file for every study ever written (two, with its
refresh) is a file creation per new study, which costs up to a few hundred
µs on ext4 without a journal after many deletions, and a folder that grows
with the archive.  Two names share a byte only if their hashes collide (about
one chance in ten million among a million studies); they then exclude each
other as one name would, which matters only where one process holds both at
once (a refresh holds its batch's refresh locks together: it would wait for
itself).
Where open file description locks do not exist (not Linux), each name is
``flock`` on a file of its own, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path

_FLAGS = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
_OFD_SETLKW: int | None = getattr(fcntl, "F_OFD_SETLKW", None)
#: ``struct flock``: type, whence, start, length, pid (0: an open file
#: description's lock), padded to its size.
_FLOCK = "@hhqqi4x"
_NAMES = "names"


def _offset(name: str) -> int:
    """The byte that stands for ``name``."""
    digest = hashlib.blake2b(name.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 2


class FolderLocks:
    """The locks whose files are in ``folder`` (``.dwa/locks``)."""

    def __init__(self, folder: Path, *, ranges: bool = _OFD_SETLKW is not None) -> None:
        self.folder = folder
        #: Whether names are bytes of one file (else a file each).
        self.ranges = ranges

    def _open(self, file: str) -> int:
        path = os.path.join(self.folder, file)
        try:  # a descriptor, no file object: every instance written takes two locks
            return os.open(path, _FLAGS, 0o666)
        except FileNotFoundError:  # the first lock of a new store
            self.folder.mkdir(parents=True, exist_ok=True)
            return os.open(path, _FLAGS, 0o666)

    @contextlib.contextmanager
    def lock(self, name: str, *, shared: bool = False) -> Iterator[None]:
        """Hold the lock ``name`` (shared or exclusive) while in the block."""
        fd = self._open(_NAMES if self.ranges else f"{name}.lock")
        try:
            if self.ranges:
                assert _OFD_SETLKW is not None
                kind = fcntl.F_RDLCK if shared else fcntl.F_WRLCK
                request = struct.pack(_FLOCK, kind, os.SEEK_SET, _offset(name), 1, 0)
                fcntl.fcntl(fd, _OFD_SETLKW, request)
            else:
                fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock, of either kind
