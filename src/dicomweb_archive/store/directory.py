"""A store in a local folder: atomic writes by rename, byte-range locks.

Every file is written to a temporary file inside the store's private ``.dwa``
folder and renamed into place, so a reader (or a killed run) only ever sees whole
files.  A file whose content is already in place is not written again, which keeps
conversion idempotent down to the modification times.  Locks are bytes of a
file in ``.dwa/locks``, shared by every process using the folder
(:mod:`~dicomweb_archive.store.locking`).

Reads never follow a symbolic link: a link planted in a study folder would
otherwise pack, and be served, as any file of the machine.  A file is opened
with ``O_NOFOLLOW`` and its descriptor's real path must be the one below the
archive's root; a folder reached through a link lists as empty.
"""

from __future__ import annotations

import contextlib
import errno
import filecmp
import functools
import itertools
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from dicomweb_archive.errors import ResourceNotFoundError, StoreError
from dicomweb_archive.model import paths
from dicomweb_archive.store.base import (
    CHUNK,
    Entry,
    Stat,
    StoreMixin,
    TemporaryFile,
    not_found,
)
from dicomweb_archive.store.locking import FolderLocks
from dicomweb_archive.store.slices import Slice, file_version

#: Temporary files older than this are left by a dead writer and removed.
_STALE_SECONDS = 3600

_TEMPORARY_NAMES = itertools.count()
_TEMPORARY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # nor block on a FIFO
_MISSING = (FileNotFoundError, NotADirectoryError)
_LIST_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: Where Linux names the file a descriptor is open on (resolved, with no race).
_FD_PATH = "/proc/self/fd/{}"
_DELETED = " (deleted)"
#: Folders removed while made (by failed writers) before making them fails.
_MAKE_FOLDER_TRIES = 8
#: Files whose identity is kept once found with no link on the way (all forgotten beyond).
_MAX_REACHED = 65_536


def _link_refused(path: str) -> ResourceNotFoundError:
    return ResourceNotFoundError(f"{path}: reached through a symbolic link, which is not followed")


def write_then_rename(
    tmp: str, handle: IO[bytes], chunks: Iterable[bytes], rename: Callable[[], None]
) -> None:
    """Write ``chunks`` to the temporary file ``tmp`` (open as ``handle``), then ``rename``.

    A reader sees the whole new file or the old one; on any failure ``tmp`` is removed.
    """
    try:
        with handle:
            for chunk in chunks:
                handle.write(chunk)
        rename()
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_parts(
    fd: int, target: str, parts: tuple[bytes, ...], then: Callable[[], None] | None = None
) -> None:
    """Write ``parts`` to the new file ``fd`` (at ``target``), close it, then
    call ``then`` (a rename); on any failure ``target`` is removed.

    One ``writev``, no file object: a file object costs three system calls
    more (its status, whether it is a terminal, its position), and a write
    each part, for each of the few files of every instance converted.
    """
    try:
        try:
            written = os.writev(fd, parts) if parts else 0
            total = sum(map(len, parts))
            if written < total:  # a short write: the rest, until done or an error
                rest = memoryview(b"".join(parts))[written:]
                while rest:
                    rest = rest[os.write(fd, rest) :]
        finally:
            os.close(fd)
        if then is not None:
            then()
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise


@dataclass
class _Temporary:
    name: str
    handle: IO[bytes]


@functools.lru_cache(maxsize=8192)  # every read of a served file asks (a viewer's frames)
def _joined(root: str, path: str) -> str:
    return os.path.normpath(os.path.join(root, path))


class DirectoryStore(StoreMixin):
    """The files under the local folder ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.url = str(root)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.root} exists and is not a folder")
        self._root = str(self.root)
        self._tmp = self.root / paths.WORK_DIR / "tmp"
        self._locks = FolderLocks(self.root / paths.WORK_DIR / "locks")
        self._tmp_dir = str(self._tmp)
        self._real_root = os.path.realpath(self._root)
        self._prefix = os.path.join(self._root, "")
        #: Files found below the root with no link on the way, by path (_reached_directly).
        self._reached: dict[str, tuple[int, int, int]] = {}

    def _full(self, path: str) -> str:
        # os.path.join(root, path), without its generality: asked three times
        # for every frame a server sends, where it was a tenth of the work.
        return path if path.startswith("/") else self._prefix + path

    def _real(self, path: str) -> str:
        """Where ``path`` is when no symbolic link is on the way."""
        return _joined(self._real_root, path)

    def _open(self, path: str) -> int:
        """A descriptor of the regular file at ``path``, never through a symbolic link."""
        return self._open_file(path)[0]

    def _open_file(self, path: str) -> tuple[int, os.stat_result, str]:
        """:meth:`_open`'s descriptor, with the file's status and full path."""
        full = self._full(path)
        try:
            fd = os.open(full, _READ_FLAGS)
        except _MISSING:
            raise not_found(path) from None
        except OSError as error:
            if error.errno == errno.ELOOP:  # the file itself is a link
                raise _link_refused(path) from None
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise not_found(path)
            if not self._reached_directly(fd, path, info):  # a folder on the way is a link
                raise _link_refused(path)
        except BaseException:
            os.close(fd)
            raise
        return fd, info, full

    def _reached_directly(self, fd: int, path: str, info: os.stat_result) -> bool:
        """Whether ``fd`` (of status ``info``) is ``path`` itself, reached through no
        symbolic link: :meth:`_opened_at`, asked once per file.

        A file found there is then known by its identity: device, inode and the
        time its status last changed, which moving, linking or writing it
        changes.  The same identity opened again is that file, untouched, so
        it is what this path held, whatever the folders on the way are now.
        (A server opens each frame it sends: the check was a tenth of that.)
        """
        identity = (info.st_dev, info.st_ino, info.st_ctime_ns)
        if self._reached.get(path) == identity:
            return True
        if not self._opened_at(fd, path):
            return False
        if len(self._reached) >= _MAX_REACHED:
            self._reached.clear()
        self._reached[path] = identity
        return True

    def _opened_at(self, fd: int, path: str) -> bool:
        """Whether ``fd`` is ``path`` itself, reached through no symbolic link."""
        try:
            actual = os.readlink(_FD_PATH.format(fd)).removesuffix(_DELETED)
        except OSError:  # no /proc: resolve the path (a link swapped in meanwhile is missed)
            actual = os.path.realpath(self._full(path))
        return actual == self._real(path)

    def local_path(self, path: str) -> Path:
        return self.root / path

    # -- reading ----------------------------------------------------------------

    def read(self, path: str) -> bytes:
        # Read into bytes of the size its status gives, without a file object
        # (a third of the time for a small document).
        fd, info, _ = self._open_file(path)
        try:
            parts = [os.read(fd, info.st_size)]
            while more := os.read(fd, CHUNK):  # to its end, as written meanwhile
                parts.append(more)
        finally:
            os.close(fd)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read_range(self, path: str, start: int, stop: int) -> bytes:
        return b"".join(self.iter_bytes(path, start, stop))

    def iter_bytes(
        self, path: str, start: int = 0, stop: int | None = None, chunk_size: int = CHUNK
    ) -> Iterator[bytes]:
        with open(self._open(path), "rb") as handle:
            handle.seek(max(0, start))
            left = None if stop is None else max(0, stop - max(0, start))
            while left is None or left > 0:
                chunk = handle.read(chunk_size if left is None else min(chunk_size, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def stat(self, path: str) -> Stat:
        fd, info, _ = self._open_file(path)
        os.close(fd)
        return Stat(info.st_size, file_version(info), info.st_mtime)

    def exists(self, path: str) -> bool:
        # os.access: no exception made for a missing file (half the cost of
        # os.path.exists, asked twice by every frame a server sends).
        try:
            return os.access(self._full(path), os.F_OK)
        except ValueError:  # a NUL in the path, as os.path.exists answers
            return False

    def list(self, path: str) -> list[Entry]:
        try:
            fd = os.open(self._full(path), _LIST_FLAGS)
        except _MISSING:
            return []
        except OSError as error:
            if error.errno == errno.ELOOP:  # the folder itself is a link: not listed
                return []
            raise
        try:
            if not self._opened_at(fd, path):  # a folder on the way is a link
                return []
            with os.scandir(fd) as entries:
                # A link to a folder is an entry, not a folder: reading it is refused.
                found = [Entry(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        finally:
            os.close(fd)
        return sorted(found)

    def stat_children(self, folder: str, name: str) -> dict[str, Stat]:
        # One safe opening of the folder, then a stat per child relative to it
        # (not a safe opening per file: a catalog looks at thousands).  A link
        # swapped in meanwhile only changes a version: reading it is refused.
        try:
            fd = os.open(self._full(folder), _LIST_FLAGS)
        except _MISSING:
            return {}
        except OSError as error:
            if error.errno == errno.ELOOP:
                return {}
            raise
        found = {}
        try:
            if not self._opened_at(fd, folder):
                return {}
            with os.scandir(fd) as entries:
                children = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
            for child in children:
                try:
                    info = os.stat(f"{child}/{name}", dir_fd=fd, follow_symlinks=False)
                except _MISSING:
                    continue
                if stat.S_ISREG(info.st_mode):
                    found[child] = Stat(info.st_size, file_version(info), info.st_mtime)
        finally:
            os.close(fd)
        return found

    def locate(self, path: str) -> Slice:
        fd, info, full = self._open_file(path)
        return Slice.whole(full, fd, info)

    # -- writing ----------------------------------------------------------------

    def _same_content(self, target: str, parts: tuple[bytes, ...]) -> bool:
        try:
            size = os.stat(target).st_size
        except FileNotFoundError:
            return False
        if size != sum(len(p) for p in parts):
            return False
        with open(target, "rb") as handle:
            for part in parts:
                if handle.read(len(part)) != part:
                    return False
        return True

    def _temporary_name(self) -> str:
        # Unique among live processes, without mkstemp's random names; a stale
        # file of a dead process that had the same pid is simply overwritten.
        return os.path.join(self._tmp_dir, f"w-{os.getpid()}-{next(_TEMPORARY_NAMES)}")

    def _open_temporary(self, mode: str) -> tuple[str, IO[bytes]]:
        name, fd = self._temporary_fd()
        return name, open(fd, mode)

    def _temporary_fd(self) -> tuple[str, int]:
        name = self._temporary_name()
        try:
            fd = os.open(name, _TEMPORARY_FLAGS, 0o666)
        except FileNotFoundError:  # the first write of a new store
            self._tmp.mkdir(parents=True, exist_ok=True)
            fd = os.open(name, _TEMPORARY_FLAGS, 0o666)
        # Mode 0o666 under the umask, as open() gives (mkstemp's is 0o600).
        return name, fd

    def _replace(self, source: str, target: str) -> None:
        try:
            os.replace(source, target)
        except FileNotFoundError:  # the first file of its folder
            _make_folder(os.path.dirname(target))
            os.replace(source, target)

    def write(self, path: str, *parts: bytes) -> bool:
        target = self._full(path)
        if self._same_content(target, parts):
            return False
        tmp, fd = self._temporary_fd()
        _write_parts(fd, tmp, parts, lambda: self._replace(tmp, target))
        return True

    def write_if_absent(self, path: str, *parts: bytes) -> bool:
        if os.path.exists(self._full(path)):
            return False
        return self.write(path, *parts)

    def write_unpublished(self, path: str, *parts: bytes, shared: str | None = None) -> None:
        """Straight into ``path``, no temporary file to rename: nobody reads it yet.

        With ``shared``, a hard link to that file when the file system has them.
        """
        target = self._full(path)
        if shared is not None and self._link(shared, target, parts):
            return
        try:
            fd = os.open(target, _TEMPORARY_FLAGS, 0o666)
        except FileNotFoundError:  # the first file of its folder
            _make_folder(os.path.dirname(target))
            fd = os.open(target, _TEMPORARY_FLAGS, 0o666)
        _write_parts(fd, target, parts)

    def _link(self, shared: str, target: str, parts: tuple[bytes, ...]) -> bool:
        """Make ``target`` a hard link to ``shared``, written first when missing.

        No new inode: on ext4 without a journal, creating a file right after
        others were deleted costs up to a few hundred microseconds of CPU.
        A file at ``target`` (a killed write's) is replaced, never written
        into: it may be a link itself.  False when no link can be made (too
        many links to the file, none on this file system): the caller writes
        a file instead.
        """
        source = self._full(shared)
        for _ in range(4):
            try:
                os.link(source, target, follow_symlinks=False)
                return True
            except FileExistsError:
                os.unlink(target)
            except FileNotFoundError:  # the shared file, or the target's folder
                if not os.path.lexists(source):
                    self.write(shared, *parts)
                else:
                    _make_folder(os.path.dirname(target))
            except OSError:
                return False
        return False

    @contextlib.contextmanager
    def temporary_file(self) -> Iterator[TemporaryFile]:
        tmp, handle = self._open_temporary("w+b")
        try:
            with handle:
                yield _Temporary(tmp, handle)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def commit(self, temporary: TemporaryFile, path: str) -> bool:
        """Rename the temporary file into place; a file of the same bytes is kept."""
        assert isinstance(temporary, _Temporary)
        temporary.handle.flush()
        target = self._full(path)
        with contextlib.suppress(OSError):
            if filecmp.cmp(temporary.name, target, shallow=False):
                return False
        self._replace(temporary.name, target)
        return True

    def move(self, source: str, target: str) -> None:
        try:
            self._replace(self._full(source), self._full(target))
        except FileNotFoundError:
            raise not_found(source) from None

    def remove(self, path: str) -> bool:
        try:
            os.unlink(self._full(path))
        except (*_MISSING, IsADirectoryError):
            return False
        return True

    def remove_empty_folder(self, path: str) -> bool:
        try:
            os.rmdir(self._full(path))
        except OSError:  # not empty, not there, not a folder
            return False
        return True

    def remove_tree(self, path: str) -> bool:
        folder = self._full(path)
        if not os.path.isdir(folder):
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return True

    # -- the store itself ---------------------------------------------------------

    def lock(self, name: str, *, shared: bool = False) -> contextlib.AbstractContextManager[None]:
        return self._locks.lock(name, shared=shared)

    def remove_stale_temporaries(self) -> None:
        """Drop temporary files a killed writer left behind, never a live writer's.

        A write's temporary names its process: it goes as soon as that process
        is gone.  Other scratch files (spooled uploads) go once an hour old.
        """
        now = time.time()
        with contextlib.suppress(FileNotFoundError):
            for entry in self._tmp.iterdir():
                with contextlib.suppress(OSError):
                    writer = _writer_of(entry.name)
                    dead = writer is not None and not _alive(writer)
                    if dead or now - entry.stat().st_mtime > _STALE_SECONDS:
                        entry.unlink()


def _make_folder(folder: str) -> None:
    """Make ``folder`` and those above it that are missing, the deepest first.

    A new instance's two folders take three calls, no look at what exists
    first.  A failed writer removes the empty folders above its instance
    (:meth:`DirectoryStore.remove_empty_folder`): one made here may go before
    the next is made in it, and is made again.
    """
    for _ in range(_MAKE_FOLDER_TRIES):
        try:
            os.mkdir(folder)
        except FileExistsError:
            return  # a file there: the write into it says so
        except FileNotFoundError:
            parent = os.path.dirname(folder)
            if parent == folder:
                raise
            _make_folder(parent)
            continue
        return
    os.mkdir(folder)


def _writer_of(name: str) -> int | None:
    """The process that writes the temporary file ``name`` (``w-{pid}-{n}``)."""
    parts = name.split("-")
    if len(parts) == 3 and parts[0] == "w" and parts[1].isdigit():
        return int(parts[1])
    return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True
