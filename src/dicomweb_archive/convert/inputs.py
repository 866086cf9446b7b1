"""Inputs of a conversion: files, folders (recursive), ZIP files and stdin."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from dicomweb_archive.errors import MalformedDicomError

_GZIP_MAGIC = b"\x1f\x8b"
#: Inputs smaller than this are read into memory, larger ones spooled to disk.
_SPOOL_MAX = 64 * 1024 * 1024


@dataclass(frozen=True)
class InputRef:
    """One input, picklable so worker processes can open it themselves."""

    path: str
    #: A member of the ZIP file at ``path``.
    member: str | None = None

    @property
    def name(self) -> str:
        return f"{self.path}:{self.member}" if self.member else self.path

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """A seekable binary file holding the input (gzip-compressed files inflated)."""
        if self.member is None:
            with open(self.path, "rb") as handle:
                if handle.read(2) != _GZIP_MAGIC:
                    handle.seek(0)
                    yield handle
                    return
                handle.seek(0)
                with (
                    gzip.GzipFile(fileobj=handle) as src,
                    tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX) as spool,
                ):
                    try:
                        shutil.copyfileobj(src, spool, 1024 * 1024)
                    except (OSError, EOFError, zlib.error) as exc:
                        raise MalformedDicomError(f"{self.name}: bad gzip data: {exc}") from exc
                    spool.seek(0)
                    yield spool  # type: ignore[misc]
            return
        with (
            zipfile.ZipFile(self.path) as archive,
            archive.open(self.member) as src,
            tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX) as spool,
        ):
            shutil.copyfileobj(src, spool, 1024 * 1024)
            spool.seek(0)
            yield spool  # type: ignore[misc]


def _is_zip(path: str) -> bool:
    if path.lower().endswith(".zip"):
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return head[:4] == b"PK\x03\x04" and head[128:132] != b"DICM"


def _zip_members(path: str) -> Iterator[InputRef]:
    with zipfile.ZipFile(path) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if not info.is_dir():
                yield InputRef(path, info.filename)


@dataclass(frozen=True)
class UnreadableInput:
    """An input named on the command line that cannot be read at all."""

    name: str
    reason: str


def expand(inputs: list[str], spool_dir: str) -> Iterator[InputRef | UnreadableInput]:
    """Every input file, in a stable order; unreadable names come as errors.

    ``-`` reads stdin into a file in ``spool_dir`` first (it may be a ZIP).
    """
    for given in inputs:
        if given == "-":
            fd, path = tempfile.mkstemp(dir=spool_dir, prefix="stdin-")
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(sys.stdin.buffer, out, 1024 * 1024)
            yield from _expand_file(path)
        elif os.path.isdir(given):
            for folder, dirs, files in os.walk(given):
                dirs.sort()
                for name in sorted(files):
                    yield from _expand_file(os.path.join(folder, name))
        elif os.path.isfile(given):
            yield from _expand_file(given)
        elif os.path.exists(given):
            yield UnreadableInput(given, "not a regular file or folder")
        else:
            yield UnreadableInput(given, "no such file or folder")


def _expand_file(path: str) -> Iterator[InputRef | UnreadableInput]:
    if _is_zip(path):
        try:
            yield from _zip_members(path)
        except (zipfile.BadZipFile, OSError) as exc:
            yield UnreadableInput(path, f"unreadable ZIP file: {exc}")
    else:
        yield InputRef(path)
