"""An archive: a store whose studies are folders or packed ZIPs, read alike.

A study lives either in the folder ``studies/{study}/`` or, packed, in the file
``studies/{study}.zip`` whose entries carry the same paths.  When both exist (a
pack or an unpack was interrupted, or the folder was kept), the ZIP is the
study.  :class:`Archive` answers reads by archive path from whichever holds the
study; writes go to its :attr:`~Archive.store`, inside a study write session
(:mod:`dicomweb_archive.store.session`) that unpacks a packed study first.
Open study ZIPs are kept in a small cache, dropped once the file is replaced.
A store without local files (memory, an object store) holds study folders only:
ZIPs are read from local files, so none is looked for there (no request per read).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from dicomweb_archive import uids
from dicomweb_archive.errors import ResourceNotFoundError, StoreError
from dicomweb_archive.model import paths
from dicomweb_archive.store.base import (
    CHUNK,
    Entry,
    ReadableStore,
    Stat,
    Store,
    instances_of,
)
from dicomweb_archive.store.slices import Slice
from dicomweb_archive.store.studyzip import StudyZip
from dicomweb_archive.store.url import open_store
from dicomweb_archive.types import InstanceKey

#: Study ZIPs kept open at once.
CACHE_SIZE = 64
_ZIP = ".zip"


def _study_of(path: str) -> str | None:
    """The study whose folder ``path`` is in (or is), if any."""
    prefix, _, rest = path.partition("/")
    if prefix != "studies":
        return None
    study, _, _ = rest.partition("/")
    # Not a UID: a file of the list (index, ZIPs) or the list's pages.
    return study if uids.is_valid_uid(study) else None


def open_archive(location: str | os.PathLike[str] | Store) -> Archive:
    """The archive at ``location``: a folder path, a ``file://`` URL, or a store.

    Nothing is checked or created: :func:`~dicomweb_archive.store.manifest.read_options`
    refuses what is not an archive, :func:`~dicomweb_archive.store.manifest.ensure`
    makes one.
    """
    return Archive(open_store(location))


class Archive:
    """Reads of every study of ``store``, folder or ZIP alike; see the module."""

    def __init__(self, store: Store, cache_size: int = CACHE_SIZE) -> None:
        self.store = store
        self.url = store.url
        self._cache: OrderedDict[str, StudyZip] = OrderedDict()
        self._cache_size = cache_size
        self._guard = threading.Lock()
        self._packs = store.local_path(paths.MANIFEST) is not None

    @property
    def local_files(self) -> bool:
        """Whether the files are local: studies may be packed here, and reading a
        file is cheap enough for the server's event loop (no request to a remote store)."""
        return self._packs

    def close(self) -> None:
        with self._guard:
            for packed in self._cache.values():
                packed.close()
            self._cache.clear()
        self.store.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- studies ------------------------------------------------------------------

    def study_uids(self) -> list[str]:
        """Every study of the archive, packed or not, sorted."""
        return list(self.studies())

    def studies(self) -> dict[str, bool]:
        """Every study of the archive, sorted, and whether it is packed (as
        listed now: one listing, no look-up per study)."""
        found: dict[str, bool] = {}
        for entry in self.store.list("studies"):
            if entry.is_folder:
                found.setdefault(entry.name, False)
            elif entry.name.endswith(_ZIP):
                # Read from local files only (a store without them holds none).
                found[entry.name[: -len(_ZIP)]] = self._packs
        # Anything else put there (a copy, a download) is not a study.
        return {uid: found[uid] for uid in sorted(found) if uids.is_valid_uid(uid)}

    def instance_keys(self, studies: Iterable[str] | None = None) -> Iterator[InstanceKey]:
        """Every committed instance of the archive (or of ``studies``), packed
        studies included, one study at a time, sorted within each."""
        for study in self.study_uids() if studies is None else studies:
            yield from instances_of(self, study)

    def is_packed(self, study: str) -> bool:
        return self._packs and self.store.exists(paths.study_zip(study))

    def has_study(self, study: str) -> bool:
        return self.is_packed(study) or self.store.exists(paths.study_dir(study))

    def study_zip(self, study: str) -> StudyZip | None:
        """The open ZIP of a packed study; None for a folder study."""
        if not self._packs:
            return None
        with self._guard:
            packed = self._cache.get(study)
            if packed is not None:
                if packed.is_current():
                    self._cache.move_to_end(study)
                    return packed
                del self._cache[study]
                packed.close()
        try:
            located = self.store.locate(paths.study_zip(study))
        except ResourceNotFoundError:
            return None
        if located is None:
            raise StoreError(f"{self.url}: packed studies are read from local files only")
        try:
            packed = StudyZip(located.path, study=study)
        except ResourceNotFoundError:
            return None
        with self._guard:
            self._cache[study] = packed
            while len(self._cache) > self._cache_size:
                _, oldest = self._cache.popitem(last=False)
                oldest.close()
        return packed

    def forget(self, study: str) -> None:
        """Close the study's ZIP if open (it was unpacked, or is about to change)."""
        with self._guard:
            packed = self._cache.pop(study, None)
        if packed is not None:
            packed.close()

    def _holder(self, path: str) -> ReadableStore:
        """The ZIP of the study ``path`` is in when it is packed, else the store."""
        study = _study_of(path)
        packed = self.study_zip(study) if study else None
        return self.store if packed is None else packed

    # -- reading (the ReadableStore protocol) -------------------------------------

    def read(self, path: str) -> bytes:
        return self._holder(path).read(path)

    def read_range(self, path: str, start: int, stop: int) -> bytes:
        return self._holder(path).read_range(path, start, stop)

    def iter_bytes(
        self, path: str, start: int = 0, stop: int | None = None, chunk_size: int = CHUNK
    ) -> Iterator[bytes]:
        return self._holder(path).iter_bytes(path, start, stop, chunk_size)

    def read_json_gz(self, path: str) -> Any:
        return self._holder(path).read_json_gz(path)

    def stat(self, path: str) -> Stat:
        return self._holder(path).stat(path)

    def exists(self, path: str) -> bool:
        return self._holder(path).exists(path)

    def stat_tree(self, folder: str) -> dict[str, Stat] | None:
        """The store's :meth:`~dicomweb_archive.store.base.Store.stat_tree`;
        None for a packed study (its files' versions are the ZIP's)."""
        holder = self._holder(folder)
        return self.store.stat_tree(folder) if holder is self.store else None

    def list(self, path: str) -> list[Entry]:
        return self._holder(path).list(path)

    def locate(self, path: str) -> Slice:
        """The stored bytes at ``path`` as a slice of a local file (the server's path)."""
        located = self._holder(path).locate(path)
        if located is None:
            raise StoreError(f"{self.url}: {path} is not in a local file")
        return located

    def lock(self, name: str, *, shared: bool = False) -> contextlib.AbstractContextManager[None]:
        return self.store.lock(name, shared=shared)
