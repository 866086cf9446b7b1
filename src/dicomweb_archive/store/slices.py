"""Stored resources as byte ranges of files opened once.

Every resource of an archive (a frame, bulk data, a gzipped document) is a
range of bytes of one file: a whole file in a folder archive, an entry's data
in a study ZIP, or a frame's payload inside its multipart envelope.  The
server streams such ranges without reading them into memory.

A slice holds the file it was measured in, open: writers replace files by
renaming a new one into place, so a path opened again could name other bytes
(a STOW-RS of the same instance) than those whose size and version an answer
already announced.  Every read of a slice is of the opened file, by ``pread``
(no shared position: one slice may serve several threads); the descriptor is
closed when the last slice of it is dropped.  A store without local files
(an object store) gives slices of a :class:`StoredFile` of its own, read by
ranged requests of the version it measured.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO does not block the open


def file_version(info: os.stat_result) -> str:
    """A file's identity and state (inode, time, size): changes when its bytes may."""
    return f"{info.st_ino:x}-{info.st_mtime_ns:x}-{info.st_size:x}"


class StoredFile(Protocol):
    """A file measured once, whose reads answer the bytes of that version only."""

    @property
    def path(self) -> Path: ...

    @property
    def size(self) -> int: ...

    @property
    def version(self) -> str: ...

    def pread(self, offset: int, length: int) -> bytes: ...


class OpenedFile:
    """A regular file opened once; closed when nothing refers to it any more."""

    __slots__ = ("_name", "fd", "info")

    def __init__(
        self, path: Path | str, fd: int | None = None, info: os.stat_result | None = None
    ) -> None:
        """Open ``path``, or take over ``fd``, already opened there (closed on failure),
        whose status ``info`` may be known already."""
        self.fd = -1
        self._name = path
        if fd is None:
            fd = os.open(path, _OPEN_FLAGS)
        try:
            # The descriptor's own status: what a reader of this file will see.
            self.info = os.fstat(fd) if info is None else info
            if not stat.S_ISREG(self.info.st_mode):
                raise FileNotFoundError(path)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    @property
    def path(self) -> Path:
        """Where the file was when opened (made a path only when asked: most never are)."""
        return Path(self._name)

    @property
    def size(self) -> int:
        return self.info.st_size

    @property
    def version(self) -> str:
        return file_version(self.info)

    def pread(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes from ``offset``; OSError when the file is shorter."""
        data = os.pread(self.fd, length, offset)
        if len(data) == length:
            return data
        pieces = [data]
        got = len(data)
        while got < length:
            piece = os.pread(self.fd, length - got, offset + got)
            if not piece:
                raise OSError(f"{self.path}: shorter than expected")
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)

    def __del__(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


@dataclass(frozen=True)
class Slice:
    """``length`` bytes of the opened ``file`` from ``offset``."""

    file: OpenedFile | StoredFile
    offset: int
    length: int

    @classmethod
    def whole(
        cls, path: Path | str, fd: int | None = None, info: os.stat_result | None = None
    ) -> Slice:
        """The whole regular file at ``path``, opened now (or as ``fd``, of status ``info``)."""
        opened = OpenedFile(path, fd, info)
        return cls(opened, 0, opened.size)

    @property
    def path(self) -> Path:
        """Where the file was when opened (for messages and cache keys)."""
        return self.file.path

    @property
    def version(self) -> str:
        """Changes whenever the bytes may have changed (file identity and time)."""
        return self.file.version

    @property
    def whole_file(self) -> OpenedFile | None:
        """The local file this slice is all of, or None (a part, or not a local file)."""
        whole = self.offset == 0 and self.length == self.file.size
        return self.file if whole and isinstance(self.file, OpenedFile) else None

    def part(self, start: int, end: int) -> Slice:
        """The bytes ``[start, end)`` of this slice."""
        return Slice(self.file, self.offset + start, end - start)

    def read(self) -> bytes:
        return self.file.pread(self.offset, self.length)

    def read_cached(self) -> bytearray | None:
        """The bytes when all of them are in the page cache, else None at once.

        A read that would wait for the disk is not made (Linux's ``RWF_NOWAIT``),
        so an event loop may call this; elsewhere it always answers None.  The
        buffer read into is the answer: a copy to ``bytes`` would cost more
        than the read (page faults of a second large allocation).
        """
        if not _NOWAIT or not isinstance(self.file, OpenedFile):
            return None
        buffer = bytearray(self.length)
        try:
            got = os.preadv(self.file.fd, [buffer], self.offset, _NOWAIT)
        except (BlockingIOError, OSError):
            # EAGAIN: not cached; EOPNOTSUPP and kin: a filesystem without it.
            return None
        return buffer if got == self.length else None


_NOWAIT: int = getattr(os, "RWF_NOWAIT", 0) if hasattr(os, "preadv") else 0
