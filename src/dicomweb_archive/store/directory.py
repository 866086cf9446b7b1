"""An archive in a local folder: atomic writes, locks, and the manifest.

Every file is written to a temporary file inside the archive's private ``.dwa``
folder and renamed into place, so a reader (or a killed run) only ever sees whole
files.  A file whose content is already in place is not written again, which keeps
conversion idempotent down to the modification times.  Concurrent writers
serialise on per-study and archive-wide ``flock`` locks for the derived documents.
"""

from __future__ import annotations

import contextlib
import fcntl
import filecmp
import gzip
import itertools
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from dicomweb_archive.errors import ArchiveError, ArchiveOptionsMismatchError
from dicomweb_archive.model import paths

FORMAT = "dicomweb-archive"
FORMAT_VERSION = 1
#: Temporary files older than this are left by a dead writer and removed.
_STALE_SECONDS = 3600


_TEMPORARY_NAMES = itertools.count()
_TEMPORARY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


def dumps_json(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (no name, no time), so equal input gives equal files."""
    return gzip.compress(data, compresslevel=6, mtime=0)


class Archive:
    """A DICOMweb archive rooted at ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._work = self.root / paths.WORK_DIR
        self._tmp = self._work / "tmp"
        self._locks = self._work / "locks"
        self._root = str(self.root)
        self._tmp_dir = str(self._tmp)

    # -- set-up -----------------------------------------------------------------

    def ensure(self, options: dict[str, Any]) -> dict[str, Any]:
        """Create the archive if needed and check ``options`` match its manifest.

        Returns the manifest.  Options that shape stored bytes (frame wrapping,
        bulk thresholds) must match an existing archive: mixing them would make
        one archive answer the same request in two ways.
        """
        if self.root.exists() and not self.root.is_dir():
            raise ArchiveError(f"{self.root} exists and is not a folder")
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._locks.mkdir(parents=True, exist_ok=True)
        with self.lock("archive"):
            manifest = self.read_manifest()
            wanted = {"format": FORMAT, "formatVersion": FORMAT_VERSION, **options}
            if manifest is None:
                self.write(
                    paths.MANIFEST,
                    orjson.dumps(wanted, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
                )
                manifest = wanted
            else:
                if manifest.get("format") != FORMAT:
                    raise ArchiveError(f"{self.root}: not a dicomweb-archive folder")
                if manifest.get("formatVersion", 0) > FORMAT_VERSION:
                    raise ArchiveError(
                        f"{self.root}: archive format {manifest.get('formatVersion')} "
                        f"is newer than this version understands ({FORMAT_VERSION})"
                    )
                differing = {
                    k: (manifest.get(k), v) for k, v in options.items() if manifest.get(k) != v
                }
                if differing:
                    said = ", ".join(
                        f"{k}: archive has {old!r}, asked for {new!r}"
                        for k, (old, new) in sorted(differing.items())
                    )
                    raise ArchiveOptionsMismatchError(f"{self.root}: {said}")
        self._remove_stale_temporaries()
        return manifest

    def read_manifest(self) -> dict[str, Any] | None:
        path = self.root / paths.MANIFEST
        if not path.exists():
            return None
        try:
            manifest: dict[str, Any] = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ArchiveError(f"{path}: unreadable manifest: {exc}") from exc
        return manifest

    def _remove_stale_temporaries(self) -> None:
        now = time.time()
        for entry in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime > _STALE_SECONDS:
                    entry.unlink()

    # -- locks ------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, name: str, *, shared: bool = False) -> Iterator[None]:
        """A lock shared with every process using this archive.

        Exclusive unless ``shared``: shared holders exclude only exclusive ones.
        Not reentrant: a process must not take a lock it already holds.
        """
        self._locks.mkdir(parents=True, exist_ok=True)
        with open(self._locks / f"{name}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- reading ----------------------------------------------------------------

    def path(self, relative: str) -> Path:
        return self.root / relative

    def exists(self, relative: str) -> bool:
        return (self.root / relative).exists()

    def read(self, relative: str) -> bytes:
        return (self.root / relative).read_bytes()

    def read_json_gz(self, relative: str) -> Any:
        return orjson.loads(gzip.decompress(self.read(relative)))

    def list_dir(self, relative: str) -> list[str]:
        folder = self.root / relative
        if not folder.is_dir():
            return []
        return sorted(e.name for e in os.scandir(folder) if e.is_dir())

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

    def write(self, relative: str, *parts: bytes) -> bool:
        """Write ``parts`` joined to ``relative`` atomically; False when unchanged."""
        target = os.path.join(self._root, relative)
        if self._same_content(target, parts):
            return False
        tmp = self._temporary_name()
        try:
            # Mode 0o666 under the umask, as open() gives (mkstemp's is 0o600).
            with open(os.open(tmp, _TEMPORARY_FLAGS, 0o666), "wb") as handle:
                for part in parts:
                    handle.write(part)
            try:
                os.replace(tmp, target)
            except FileNotFoundError:  # the first file of its folder
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return True

    @contextlib.contextmanager
    def temporary_file(self) -> Iterator[tuple[str, BinaryIO]]:
        """A new file in the private area, for content too large to hold in memory.

        Fill it, then :meth:`commit` it; it is removed if still there on exit.
        """
        self._tmp.mkdir(parents=True, exist_ok=True)
        tmp = self._temporary_name()
        try:
            with open(os.open(tmp, _TEMPORARY_FLAGS, 0o666), "w+b") as handle:
                yield tmp, handle
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def commit(self, tmp: str, relative: str) -> bool:
        """Rename a filled :meth:`temporary_file` to ``relative``; False when unchanged.

        Flush the file's handle first.  A target that already holds the same
        bytes is left alone, modification time included.
        """
        target = os.path.join(self._root, relative)
        with contextlib.suppress(OSError):
            if filecmp.cmp(tmp, target, shallow=False):
                return False
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(tmp, target)
        return True

    def write_if_absent(self, relative: str, *parts: bytes) -> bool:
        """Write a content-addressed file unless it exists already."""
        if (self.root / relative).exists():
            return False
        return self.write(relative, *parts)

    def write_json_gz(self, relative: str, document: Any) -> bool:
        return self.write(relative, gzip_bytes(dumps_json(document)))

    def remove(self, relative: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / relative).unlink()

    def remove_all(self, relatives: Iterable[str]) -> None:
        for relative in relatives:
            self.remove(relative)
