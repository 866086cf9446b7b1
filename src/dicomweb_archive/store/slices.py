"""Stored resources as byte ranges of files.

Every resource of an archive (a frame, bulk data, a gzipped document) is a
range of bytes of one file: a whole file in a folder archive, an entry's data
in a study ZIP, or a frame's payload inside its multipart envelope.  The
server streams such ranges without reading them into memory.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path


def file_version(info: os.stat_result) -> str:
    """A file's identity and state (inode, time, size): changes when its bytes may."""
    return f"{info.st_ino:x}-{info.st_mtime_ns:x}-{info.st_size:x}"


@dataclass(frozen=True)
class Slice:
    """``length`` bytes of the file at ``path`` from ``offset``."""

    path: Path
    offset: int
    length: int
    #: Changes whenever the bytes may have changed (file identity and time).
    version: str

    @classmethod
    def whole(cls, path: Path) -> Slice:
        """The whole regular file at ``path``."""
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise FileNotFoundError(path)
        return cls(path, 0, info.st_size, file_version(info))

    def part(self, start: int, end: int) -> Slice:
        """The bytes ``[start, end)`` of this slice."""
        return Slice(self.path, self.offset + start, end - start, self.version)

    def read(self) -> bytes:
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read(self.length)
        if len(data) != self.length:
            raise OSError(f"{self.path}: shorter than expected")
        return data

    def read_cached(self) -> bytearray | None:
        """The bytes when all of them are in the page cache, else None at once.

        A read that would wait for the disk is not made (Linux's ``RWF_NOWAIT``),
        so an event loop may call this; elsewhere it always answers None.  The
        buffer read into is the answer: a copy to ``bytes`` would cost more
        than the read (page faults of a second large allocation).
        """
        if not _NOWAIT:
            return None
        buffer = bytearray(self.length)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            got = os.preadv(fd, [buffer], self.offset, _NOWAIT)
        except (BlockingIOError, OSError):
            # EAGAIN: not cached; EOPNOTSUPP and kin: a filesystem without it.
            return None
        finally:
            os.close(fd)
        return buffer if got == self.length else None


_NOWAIT: int = getattr(os, "RWF_NOWAIT", 0) if hasattr(os, "preadv") else 0
