"""Read an archive whose studies are folders or packed ZIPs, by archive path.

The server asks for ``studies/{study}/…`` paths and gets a :class:`Slice` of a
file: the file itself in a folder study, the entry's stored bytes inside
``studies/{study}.zip`` for a packed one (the ZIP wins when both exist, as in
:mod:`dicomweb_archive.store.studies`).  Open study ZIPs are kept in a small
cache and dropped once the file on disk is replaced (a new pack, an unpack).
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from typing import Any

import orjson

from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.store.directory import Archive
from dicomweb_archive.store.slices import Slice
from dicomweb_archive.store.studyzip import StudyZip

#: Study ZIPs kept open at once.
CACHE_SIZE = 64


def _study_of(relative: str) -> str | None:
    prefix, _, rest = relative.partition("/")
    if prefix != "studies" or "/" not in rest:
        return None
    return rest.partition("/")[0]


class ArchiveReader:
    """Read access to every study of ``archive``, folder or ZIP alike."""

    def __init__(self, archive: Archive, cache_size: int = CACHE_SIZE) -> None:
        self.archive = archive
        self._cache: OrderedDict[str, StudyZip] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for packed in self._cache.values():
                packed.close()
            self._cache.clear()

    def study_zip(self, study: str) -> StudyZip | None:
        """The open ZIP of a packed study; None for a folder study."""
        with self._lock:
            packed = self._cache.get(study)
            if packed is not None:
                if packed.is_current():
                    self._cache.move_to_end(study)
                    return packed
                del self._cache[study]
                packed.close()
        path = self.archive.path(paths.study_zip(study))
        if not path.is_file():
            return None
        try:
            packed = StudyZip(path, study=study)
        except ResourceNotFoundError:
            return None
        with self._lock:
            self._cache[study] = packed
            while len(self._cache) > self._cache_size:
                _, oldest = self._cache.popitem(last=False)
                oldest.close()
        return packed

    def locate(self, relative: str) -> Slice:
        """The stored bytes of the resource at ``relative``."""
        study = _study_of(relative)
        packed = self.study_zip(study) if study else None
        if packed is not None:
            if relative not in packed:
                raise ResourceNotFoundError(f"{relative} not found")
            entry = packed.entry(relative)
            return Slice(packed.path, entry.offset, entry.length, packed.version)
        try:
            return Slice.whole(self.archive.path(relative))
        except (FileNotFoundError, NotADirectoryError):
            raise ResourceNotFoundError(f"{relative} not found") from None

    # The StudyFiles protocol, so export and transcoding read packed studies too.

    def exists(self, relative: str) -> bool:
        try:
            self.locate(relative)
        except ResourceNotFoundError:
            return False
        return True

    def read(self, relative: str) -> bytes:
        study = _study_of(relative)
        packed = self.study_zip(study) if study else None
        if packed is not None:
            if relative not in packed:
                raise ResourceNotFoundError(f"{relative} not found")
            return packed.read(relative)
        try:
            return self.archive.read(relative)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ResourceNotFoundError(f"{relative} not found") from None

    def read_json_gz(self, relative: str) -> Any:
        return orjson.loads(gzip.decompress(self.read(relative)))
