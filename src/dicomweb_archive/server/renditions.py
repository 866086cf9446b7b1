"""Frames the server encodes on request, kept in a cache of bounded size.

Three renditions are made rather than stored: rendered images and thumbnails
(:mod:`.rendered`), the reduced JPEG-LS images of ``/jlsThumbnail/`` and
``resolution=`` (:mod:`.jpegls`), and HTJ2K Lossless RPCL frames for a client
that asks for them where the archive holds none (no ``dwa transcode`` run, or
only a lossy alternate, whose codestreams a lossless request must not get).
Each is made from the stored frame once, then read from ``.dwa/cache/{kind}/``
under a key of the stored file's version and the rendition's parameters, so a
changed frame never meets its old rendition.

The cache is derived data with a byte budget (``dwa serve --cache-size``): once
as many bytes as a quarter of the budget were added since the last check, the
cache is measured and entries picked at random are removed until it holds three
quarters of the budget (random eviction needs no record of use on reads).  Pruning
costs one listing of the cache per quarter budget written.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
from collections.abc import Callable, Iterator

from dicomweb_archive.codec.decode import Decoded, ImagePixel, decode_frame
from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.model.paths import ResourcePath, ResourceType
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import files_under

CACHE_DIR = f"{paths.WORK_DIR}/cache"
#: Bytes the cache may hold unless ``dwa serve --cache-size`` says otherwise.
DEFAULT_BUDGET = 1024**3

#: Encodes one decoded frame of an image.
Encoder = Callable[[Decoded, ImagePixel], bytes]

logger = logging.getLogger(__name__)


class RenditionCache:
    """The renditions of ``archive`` made so far, at most ``budget`` bytes of them."""

    def __init__(self, archive: Archive, budget: int = DEFAULT_BUDGET) -> None:
        self.archive = archive
        self.budget = budget
        self._added = 0
        self._lock = threading.Lock()

    def frames(
        self,
        kind: str,
        variant: str,
        resource: ResourcePath,
        frames: list[tuple[str, str]],
        payloads: Iterator[bytes],
        transfer_syntax: str,
        encoder: Encoder,
    ) -> Iterator[bytes]:
        """The ``kind`` rendition of each frame, from the cache or made and cached.

        ``frames`` names each frame's stored file and version, ``payloads`` gives
        their stored bytes (stepped through in turn, decoded only when a
        rendition is not cached yet); ``variant`` names the parameters.
        """
        image: ImagePixel | None = None
        for relative, version in frames:
            payload = next(payloads)
            path = self._path(kind, f"{relative}|{version}|{variant}")
            cached = self._read(path)
            if cached is not None:
                yield cached
                continue
            if image is None:
                instance = resource.up(ResourceType.INSTANCE).metadata().file
                [meta] = self.archive.read_json_gz(instance)
                image = ImagePixel.from_metadata(dict(meta))
            body = encoder(decode_frame(payload, transfer_syntax, image), image)
            self._add(path, body)
            yield body

    def one(self, kind: str, material: str, make: Callable[[], bytes]) -> bytes:
        """The rendition ``material`` names (a stored file's version and the
        parameters), from the cache or made by ``make`` and cached."""
        path = self._path(kind, material)
        cached = self._read(path)
        if cached is None:
            cached = make()
            self._add(path, cached)
        return cached

    @staticmethod
    def _path(kind: str, material: str) -> str:
        key = hashlib.blake2b(material.encode(), digest_size=16).hexdigest()
        return f"{CACHE_DIR}/{kind}/{key[:2]}/{key}"

    def _read(self, path: str) -> bytes | None:
        try:
            return self.archive.read(path)
        except ResourceNotFoundError:  # not made yet, or pruned meanwhile
            return None

    def _add(self, path: str, body: bytes) -> None:
        self.archive.store.write(path, body)
        with self._lock:
            self._added += len(body)
            due = self._added >= self.budget // 4
            if due:
                self._added = 0
        if due:
            self.prune()

    def prune(self) -> int:
        """Remove entries until the cache holds at most three quarters of the budget.

        Returns the number of bytes removed.
        """
        store = self.archive.store
        entries = []
        for path in files_under(store, CACHE_DIR):
            try:
                entries.append((path, store.stat(path).size))
            except ResourceNotFoundError:  # removed by another process meanwhile
                continue
        held = sum(size for _, size in entries)
        target, removed = self.budget * 3 // 4, 0
        random.shuffle(entries)  # random eviction: no access times to keep up to date
        for path, size in entries:
            if held - removed <= target:
                break
            if store.remove(path):
                removed += size
        if removed:
            logger.info("rendition cache: %d bytes removed, %d kept", removed, held - removed)
        return removed
