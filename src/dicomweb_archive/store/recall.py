"""Instances as a refresh last read them, kept by file version between refreshes.

A refresh of a study's documents needs every instance's metadata.  Read whole
each time, a study of thousands of instances costs thousands of reads and
parses per refresh, however few instances changed.  :class:`Recall` keeps each
metadata document's :class:`~dicomweb_archive.model.instance.Instance` with
the version (:meth:`~dicomweb_archive.store.base.ReadableStore.stat`) it was
read at: a refresh reads again only what changed since, and compares the kept
canonical values of the rest.  The version is taken before the read, so a
document replaced in between is read again next time, never kept stale.

Memory is bounded: the least recently used documents go once the kept ones
stood for :data:`LIMIT` bytes as stored (gzipped JSON; kept parsed with each
element's canonical JSON, 300 CT slices took 45 times their stored size).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from dicomweb_archive.model.instance import Instance
from dicomweb_archive.store.base import ReadableStore, Stat, gunzip

#: Bytes of stored (gzipped) metadata documents kept at most.
LIMIT = 4 * 2**20


class Recall:
    """Parsed instance metadata by path and version; see the module."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._kept: OrderedDict[str, tuple[str, int, list[Instance]]] = OrderedDict()
        self._size = 0
        self._guard = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def instances(
        self, store: ReadableStore, path: str, stat: Stat | None = None
    ) -> list[Instance]:
        """The instances of the metadata document at ``path``, read only when
        changed since ``stat`` (default: stat it now); raises as
        :meth:`~dicomweb_archive.store.base.ReadableStore.read`."""
        stat = store.stat(path) if stat is None else stat
        with self._guard:
            kept = self._kept.get(path)
            if kept is not None and kept[0] == stat.version:
                self._kept.move_to_end(path)
                return kept[2]
        instances = Instance.read(gunzip(store.read(path)))
        with self._guard:
            previous = self._kept.pop(path, None)
            if previous is not None:
                self._size -= previous[1]
            self._kept[path] = (stat.version, stat.size, instances)
            self._size += stat.size
            while self._size > self.limit and len(self._kept) > 1:
                _, (_, size, _) = self._kept.popitem(last=False)
                self._size -= size
        return instances
