"""Inputs of a conversion: files, folders (recursive), ZIP files, stdin, and
objects of an object store (``s3://bucket/prefix``, see :mod:`.objects`).

A file or folder named on the command line must be readable; what a folder or a
ZIP file holds besides DICOM (a README, ``.DS_Store``, a FIFO) is skipped with a
reason, but a damaged DICOM file in it still fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import gzip
import os
import shutil
import stat
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from dicomweb_archive.convert import objects
from dicomweb_archive.errors import InvalidInputError, MalformedDicomError
from dicomweb_archive.store.url import is_url

_GZIP_MAGIC = b"\x1f\x8b"
#: Inputs smaller than this are read into memory, larger ones spooled to disk.
_SPOOL_MAX = 64 * 1024 * 1024
STDIN = "-"


class Source(Protocol):
    """What a worker converts: something named that opens as a P10 file (picklable)."""

    @property
    def name(self) -> str: ...

    #: Found in a folder or ZIP file rather than named: skipped when plainly not DICOM.
    @property
    def contained(self) -> bool: ...

    def open(self) -> AbstractContextManager[BinaryIO]: ...


@dataclass(frozen=True)
class InputRef:
    """One input, picklable so worker processes can open it themselves."""

    path: str
    #: A member of the ZIP file at ``path``.
    member: str | None = None
    #: Found in a folder or ZIP file rather than named: skipped when plainly not DICOM.
    contained: bool = False
    #: The name the user knows ``path`` by (``-`` for stdin spooled to ``path``).
    given: str | None = None
    #: The folder a relative ``path`` is relative to, for a process elsewhere (a
    #: cluster's worker) to open it; reasons still name ``path`` as given.
    folder: str | None = None

    @property
    def name(self) -> str:
        path = self.given or unicode_name(self.path)
        return f"{path}:{self.member}" if self.member else path

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """A seekable binary file holding the input (gzip-compressed files inflated)."""
        if self.member is None:
            whole = (
                objects.open_object(self.path)
                if is_object(self.path)
                else _open_regular(self.path, self.folder)
            )
            with whole as handle:
                if handle.read(2) != _GZIP_MAGIC:
                    handle.seek(0)
                    yield handle
                    return
                handle.seek(0)
                with (
                    gzip.GzipFile(fileobj=handle, mode="rb") as src,
                    tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX) as spool,
                ):
                    try:
                        shutil.copyfileobj(src, spool, 1024 * 1024)
                    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                        raise MalformedDicomError(f"{self.name}: bad gzip data: {exc}") from exc
                    spool.seek(0)
                    yield spool  # type: ignore[misc]
            return
        with (
            open(self.path, "rb", opener=_opener(self.folder)) as handle,
            zipfile.ZipFile(handle) as archive,
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX) as spool,
        ):
            try:
                with archive.open(self.member) as src:
                    shutil.copyfileobj(src, spool, 1024 * 1024)
            except zipfile.BadZipFile as exc:
                what = "bad CRC-32" if "CRC" in str(exc) else str(exc)
                raise MalformedDicomError(f"{self.name}: damaged ZIP member: {what}") from exc
            except (EOFError, zlib.error, NotImplementedError) as exc:
                raise MalformedDicomError(f"{self.name}: damaged ZIP member: {exc}") from exc
            except RuntimeError as exc:  # zipfile's "File ... is encrypted, password required"
                raise MalformedDicomError(f"{self.name}: encrypted ZIP member") from exc
            spool.seek(0)
            yield spool  # type: ignore[misc]


@contextlib.contextmanager
def _open_regular(path: str, folder: str | None) -> Iterator[BinaryIO]:
    # O_NONBLOCK: a FIFO put in place of the file after the folder was read
    # must not block the worker on open.
    with open(path, "rb", opener=_opener(folder, os.O_NONBLOCK)) as handle:
        kind = _kind(os.fstat(handle.fileno()).st_mode)
        if kind != "file":
            raise InvalidInputError(f"{path}: not a regular file ({kind})")
        os.set_blocking(handle.fileno(), True)
        yield handle


def is_object(path: str) -> bool:
    """Whether ``path`` names an object in an object store (``s3://…``), not a file."""
    return is_url(path) and not path.lower().startswith("file:")


def _opener(folder: str | None, extra: int = 0) -> Callable[[str, int], int]:
    """Opens a path relative to ``folder`` (when given) with ``extra`` flags.

    Through ``dir_fd``, so an error names the path as given, not the joined one.
    """

    def opener(path: str, flags: int) -> int:
        if folder is None or os.path.isabs(path):
            return os.open(path, flags | extra)
        parent = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return os.open(path, flags | extra, dir_fd=parent)
        finally:
            os.close(parent)

    return opener


def anchored(ref: InputRef) -> InputRef:
    """``ref`` openable from any working folder (a cluster's workers have their own)."""
    if ref.folder is not None or os.path.isabs(ref.path) or is_object(ref.path):
        return ref
    return dataclasses.replace(ref, folder=os.getcwd())


@dataclass(frozen=True)
class UnreadableInput:
    """An input that cannot be read at all, or that is skipped (``skipped``) with a reason."""

    path: str
    reason: str
    skipped: bool = False

    @property
    def name(self) -> str:
        return unicode_name(self.path)


def unicode_name(path: str) -> str:
    """``path`` with the bytes of a name that is not UTF-8 written as ``\\xNN``."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def os_reason(exc: OSError) -> str:
    """What went wrong, in words, without Python's notation or the file name."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "folder"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return kind
    return "special file"


class Spool:
    """Files holding stdin while it is converted; all removed on exit, also on failure."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.paths: list[str] = []

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        for path in self.paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def stdin(self) -> str:
        """Copy stdin into a new file; raises OSError (the file is removed on exit)."""
        os.makedirs(self.folder, exist_ok=True)
        fd, path = tempfile.mkstemp(dir=self.folder, prefix="stdin-")
        self.paths.append(path)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1024 * 1024)
        return path


def expand(inputs: list[str], spool: Spool) -> Iterator[InputRef | UnreadableInput]:
    """Every input file, in a stable order; unreadable and skipped ones come as errors.

    ``-`` reads stdin into a file of ``spool`` first (it may be a ZIP).
    """
    for given in inputs:
        if given == STDIN:
            try:
                path = spool.stdin()
            except OSError as exc:
                yield UnreadableInput(STDIN, f"cannot read stdin into a file: {os_reason(exc)}")
                continue
            yield from _expand_file(path, contained=False, given=STDIN)
            continue
        if is_object(given):
            yield from _expand_objects(given)
            continue
        try:
            mode = os.stat(given).st_mode
        except OSError as exc:
            yield UnreadableInput(given, _missing_reason(given, exc))
            continue
        kind = _kind(mode)
        if kind == "folder":
            yield from _walk(given, [_identity(given)], set())
        elif kind == "file":
            yield from _expand_file(given, contained=False)
        else:
            yield UnreadableInput(given, f"not a regular file or folder ({kind})")


def _expand_objects(url: str) -> Iterator[InputRef | UnreadableInput]:
    """The objects at ``url`` (an object or a prefix), like a file or a folder's files."""
    try:
        found = objects.list_objects(url)
    except InvalidInputError as exc:
        yield UnreadableInput(url, str(exc))
        return
    except FileNotFoundError:
        yield UnreadableInput(url, "no such object or prefix")
        return
    except OSError as exc:
        yield UnreadableInput(url, f"cannot list: {os_reason(exc)}")
        return
    for name in found:
        yield InputRef(name, contained=name != url)


def _missing_reason(path: str, exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "broken symbolic link" if os.path.islink(path) else "no such file or folder"
    return os_reason(exc)


def _identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _walk(
    folder: str, ancestors: list[tuple[int, int]], seen: set[tuple[int, int]]
) -> Iterator[InputRef | UnreadableInput]:
    """A folder's files in name order, following symbolic links without looping."""
    seen.add(ancestors[-1])
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError as exc:
        yield UnreadableInput(folder, f"cannot read folder: {os_reason(exc)}")
        return
    for entry in entries:
        if _listed_file(entry):
            yield from _expand_file(entry.path, contained=True)
            continue
        try:
            st = os.stat(entry.path)
        except OSError as exc:
            yield UnreadableInput(entry.path, _missing_reason(entry.path, exc))
            continue
        kind = _kind(st.st_mode)
        if kind == "folder":
            identity = (st.st_dev, st.st_ino)
            if identity in ancestors:
                yield UnreadableInput(entry.path, "symbolic link loop", skipped=True)
            elif identity in seen:
                yield UnreadableInput(entry.path, "folder already read", skipped=True)
            else:
                yield from _walk(entry.path, [*ancestors, identity], seen)
        elif kind == "file":
            yield from _expand_file(entry.path, contained=True)
        else:
            yield UnreadableInput(entry.path, f"not a regular file ({kind})", skipped=True)


def _listed_file(entry: os.DirEntry[str]) -> bool:
    """Whether the entry is a regular file, from its folder's listing when it can (no stat)."""
    try:
        return entry.is_file()
    except OSError:
        return False  # the stat that follows says why


def _is_zip(path: str) -> bool:
    if path.lower().endswith(".zip"):
        return True
    try:  # the least system calls: every input of a run is sniffed here, one by one
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        head = os.pread(fd, 132, 0)
    except OSError:
        return False
    finally:
        os.close(fd)
    return head[:4] == b"PK\x03\x04" and head[128:132] != b"DICM"


def _expand_file(
    path: str, *, contained: bool, given: str | None = None
) -> Iterator[InputRef | UnreadableInput]:
    if not _is_zip(path):
        yield InputRef(path, contained=contained, given=given)
        return
    try:
        with zipfile.ZipFile(path) as archive:
            infos = sorted(archive.infolist(), key=lambda i: i.filename)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
        yield UnreadableInput(given or path, f"unreadable ZIP file: {reason}")
        return
    for info in infos:
        if not info.is_dir():
            yield InputRef(path, info.filename, contained=True, given=given)
