"""The one interface to where an archive's bytes live: :class:`Store`.

A store holds files by relative, ``/``-separated path (``studies/{study}/metadata.gz``).
Every backend gives the same guarantees: a write is atomic (a reader sees the old
bytes or the new ones, never a mix), a write of bytes already in place changes
nothing (so a rerun is idempotent), and the archive-wide locks serialise writers
of every process using the store.  Folders exist only as the paths below them.

Backends: :class:`~dicomweb_archive.store.directory.DirectoryStore` (a local
folder), :class:`~dicomweb_archive.store.memory.MemoryStore` (for tests), and,
read only, :class:`~dicomweb_archive.store.studyzip.StudyZip` (one packed study).
Callers never need a file system path, except for the optional zero-copy
serving path: :meth:`Store.locate` answers a :class:`Slice` of a local file
when the backend has one.
"""

from __future__ import annotations

import contextlib
import gzip
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol, runtime_checkable

import orjson

from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.store.slices import Slice
from dicomweb_archive.types import InstanceKey

#: Reads of large files are streamed in pieces of this size.
CHUNK = 1 << 20


class Stat(NamedTuple):
    """What is known of a stored file without reading it."""

    size: int
    #: Changes whenever the bytes may have changed (an ETag's material).
    version: str
    #: When the file was last written (seconds since the epoch); None when the
    #: store does not say (a ``Last-Modified``'s material).
    modified: float | None = None


class Entry(NamedTuple):
    """One child of a folder: a file, or a folder holding files."""

    name: str
    is_folder: bool


class TemporaryFile(Protocol):
    """Content too large to hold in memory, filled before :meth:`Store.commit`."""

    @property
    def handle(self) -> IO[bytes]:
        """Write (and read back) here; it is flushed on commit."""
        ...


@runtime_checkable
class ReadableStore(Protocol):
    """The reading half of :class:`Store` (all a packed study offers)."""

    #: Where the store is, as given to :func:`~dicomweb_archive.store.url.open_store`.
    url: str

    # -- reading ----------------------------------------------------------------

    def read(self, path: str) -> bytes:
        """The whole file; :class:`ResourceNotFoundError` when there is none."""
        ...

    def read_range(self, path: str, start: int, stop: int) -> bytes:
        """The bytes ``[start, stop)`` of the file (fewer at its end)."""
        ...

    def iter_bytes(
        self, path: str, start: int = 0, stop: int | None = None, chunk_size: int = CHUNK
    ) -> Iterator[bytes]:
        """The bytes ``[start, stop)`` of the file in pieces of at most ``chunk_size``."""
        ...

    def read_json_gz(self, path: str) -> Any:
        """A gzipped JSON document."""
        ...

    def stat(self, path: str) -> Stat:
        """Size and version of the file; :class:`ResourceNotFoundError` when none."""
        ...

    def exists(self, path: str) -> bool:
        """Whether a file, or a folder holding files, is at ``path``."""
        ...

    def list(self, path: str) -> list[Entry]:
        """The children of the folder ``path``, sorted by name; ``[]`` when none."""
        ...

    def locate(self, path: str) -> Slice | None:
        """The file as a slice of a local file, or None for a backend without them.

        The server's zero-copy path; :class:`ResourceNotFoundError` when none.
        """
        ...

    def close(self) -> None: ...


@runtime_checkable
class Store(ReadableStore, Protocol):
    """Where the files of an archive live; see the module docstring."""

    # -- writing ----------------------------------------------------------------

    def write(self, path: str, *parts: bytes) -> bool:
        """Write ``parts`` joined, atomically; False (nothing done) when unchanged."""
        ...

    def write_if_absent(self, path: str, *parts: bytes) -> bool:
        """Write a content-addressed file unless one is there already."""
        ...

    def write_unpublished(self, path: str, *parts: bytes, shared: str | None = None) -> None:
        """Write a file no reader sees before it is moved into place (a staged one).

        Need not be atomic (a killed write may leave part of it), nor compare
        with what is there: a backend may save its atomic write's extra steps.
        ``shared`` names a file that holds these same bytes for good (written
        whole when missing, never changed, removed only as a whole): a backend
        may make ``path`` another name of it (a hard link) instead of a file of
        its own, which saves creating a file.
        """
        ...

    def write_json_gz(self, path: str, document: Any) -> bool:
        """Write a document as deterministic gzipped JSON (sorted keys)."""
        ...

    def temporary_file(self) -> contextlib.AbstractContextManager[TemporaryFile]:
        """A file for large content; :meth:`commit` it, it is dropped on exit."""
        ...

    def commit(self, temporary: TemporaryFile, path: str) -> bool:
        """Put a filled temporary file at ``path``; False when the bytes were there."""
        ...

    def move(self, source: str, target: str) -> None:
        """Replace ``target`` by the file at ``source``, atomically."""
        ...

    def remove(self, path: str) -> bool:
        """Remove one file; False when there was none."""
        ...

    def remove_tree(self, path: str) -> bool:
        """Remove a folder and everything in it; False when there was none."""
        ...

    def remove_empty_folder(self, path: str) -> bool:
        """Remove the folder ``path`` if it holds nothing; False when it holds
        something, is not there, or, as on a backend whose folders are only
        the paths below them, is gone with its last file already."""
        ...

    def stat_children(self, folder: str, name: str) -> dict[str, Stat]:
        """The :meth:`stat` of ``{folder}/{child}/{name}`` by child, for each
        child folder of ``folder`` that has one (a catalog's look at a study)."""
        ...

    def stat_tree(self, folder: str) -> dict[str, Stat] | None:
        """The :meth:`stat` of every file under ``folder``, by path, when one
        listing tells them (an object store's, one request instead of one per
        file); None where a :meth:`stat` of each file costs no more."""
        ...

    # -- the store itself ---------------------------------------------------------

    def lock(self, name: str, *, shared: bool = False) -> contextlib.AbstractContextManager[None]:
        """A lock shared with every process using the store; not reentrant.

        Exclusive unless ``shared``: shared holders exclude only exclusive ones.
        """
        ...

    def local_path(self, path: str) -> Path | None:
        """Where ``path`` is on the local file system (it may not exist yet), or None.

        For the work area only (the SQLite index, scratch files); stored
        resources are read through the methods above.
        """
        ...

    def remove_stale_temporaries(self) -> None:
        """Drop temporary files that a killed writer left behind."""
        ...


def dumps_json(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    """Deterministic gzip (no name, no time), so equal input gives equal files."""
    return gzip.compress(data, compresslevel=level, mtime=0)


def gunzip(data: bytes) -> bytes:
    """The bytes of a gzip file: :func:`gzip.decompress`'s answer, without its
    header parsing in Python when the file is one member (every document the
    archive writes; a tiny document reads in two thirds of the time)."""
    inflater = zlib.decompressobj(wbits=31)  # 16 + 15: a gzip member, its header checked
    try:
        data_out = inflater.decompress(data)
    except zlib.error:
        return gzip.decompress(data)  # its error, as before
    if not inflater.eof or inflater.unused_data:
        return gzip.decompress(data)  # several members, or cut short: as before
    return data_out


def not_found(path: str) -> ResourceNotFoundError:
    return ResourceNotFoundError(f"{path} not found")


def files_under(store: ReadableStore, folder: str) -> Iterator[str]:
    """The paths of every file below ``folder``, in name order (depth first)."""
    for entry in store.list(folder):
        path = f"{folder}/{entry.name}"
        if entry.is_folder:
            yield from files_under(store, path)
        else:
            yield path


def scratch_folder(store: Store) -> str:
    """A local folder for scratch files: the store's work area when it is local.

    Beside the archive on the same file system when it can be (uploads and
    extracted inputs can be large), else the system's temporary folder.
    """
    local = store.local_path(f"{paths.WORK_DIR}/tmp")
    if local is None:
        return tempfile.gettempdir()
    local.mkdir(parents=True, exist_ok=True)
    return str(local)


def folders(store: ReadableStore, path: str) -> list[str]:
    """The names of the folders in ``path``, sorted."""
    return [entry.name for entry in store.list(path) if entry.is_folder]


def instances_of(store: ReadableStore, study: str, series: str | None = None) -> list[InstanceKey]:
    """The committed instances of a study (or of one of its series), sorted."""
    found = []
    every = folders(store, f"{paths.study_dir(study)}/series")
    for uid in every if series is None else [s for s in every if s == series]:
        for sop in folders(store, f"{paths.series_dir(study, uid)}/instances"):
            key = InstanceKey(study, uid, sop)
            if store.exists(paths.instance_metadata(*key)):
                found.append(key)
    return found


class StoreMixin:
    """The methods every backend derives from its primitives the same way."""

    def read(self, path: str) -> bytes:
        raise NotImplementedError

    def write(self, path: str, *parts: bytes) -> bool:
        raise NotImplementedError

    def stat(self, path: str) -> Stat:
        raise NotImplementedError

    def list(self, path: str) -> list[Entry]:
        raise NotImplementedError

    def write_unpublished(self, path: str, *parts: bytes, shared: str | None = None) -> None:
        self.write(path, *parts)

    def remove_empty_folder(self, path: str) -> bool:
        return False  # folders are the paths below them

    def read_json_gz(self, path: str) -> Any:
        return orjson.loads(gunzip(self.read(path)))

    def stat_tree(self, folder: str) -> dict[str, Stat] | None:
        return None

    def stat_children(self, folder: str, name: str) -> dict[str, Stat]:
        found = {}
        for entry in self.list(folder):
            if entry.is_folder:
                try:
                    found[entry.name] = self.stat(f"{folder}/{entry.name}/{name}")
                except ResourceNotFoundError:
                    continue
        return found

    def write_json_gz(self, path: str, document: Any) -> bool:
        return self.write(path, gzip_bytes(dumps_json(document)))

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass
