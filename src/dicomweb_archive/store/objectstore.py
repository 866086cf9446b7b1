"""A store in an object store (``s3://bucket/prefix``, any fsspec file system).

Objects have no rename, so the guarantees of :class:`~dicomweb_archive.store.base.Store`
come from elsewhere:

- **Atomic writes**: an object appears whole when its PUT (or its multipart
  upload) completes, never in part.  Each is written with the headers a static
  host must send (:func:`~dicomweb_archive.model.hosting.static_headers`), so a
  website endpoint or a CDN in front of the bucket serves OHIF as it is.
- **Unchanged bytes are not written**: the object's size and ETag (the MD5 of a
  single-part upload) are compared with the new bytes first; so reruns and
  ``dwa push`` upload only what changed.
- **The work area is local**: everything under ``.dwa/`` (locks, staged
  instance files, the catalog's journal, the SQLite QIDO-RS index, caches)
  lives in a local folder named after the URL in ``$DWA_WORK_DIR`` (by
  default ``~/.cache/dicomweb-archive/work/``).  Locks are ``flock`` there: any number
  of processes of one machine write one bucket safely; several machines must
  each write studies of their own.  The index is derived data, built from the
  bucket's documents when missing.  Staged files are moved into the bucket in
  the staging's commit order (frames and bulk data, then ``info.json.gz``,
  instance metadata last); a killed run is finished by the next one on the
  same machine, and a rerun of the same inputs anywhere rewrites what differs.

Reads for serving (:meth:`ObjectStore.locate`) fetch the first
:data:`PREFETCH` bytes with the object's size and ETag in one request, so most
frames and documents cost one GET; bytes beyond are fetched by ranged GETs
bound to that ETag (``If-Match``), so an answer never mixes two versions.
Objects that fit the prefetch are kept in a bounded cache and revalidated
(``If-None-Match``), a 304 instead of the bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import fsspec

from dicomweb_archive.model import paths
from dicomweb_archive.model.hosting import HEAD_SIZE, static_headers
from dicomweb_archive.store import s3requests
from dicomweb_archive.store.base import CHUNK, Entry, Stat, StoreMixin, TemporaryFile, not_found
from dicomweb_archive.store.directory import DirectoryStore
from dicomweb_archive.store.slices import Slice

#: Bytes fetched with an object's size and version when it is located.
PREFETCH = 1 << 20
#: Total bytes of small objects kept to answer revalidated reads (304s).
CACHE_BYTES = 64 << 20
#: Header names and the keyword s3fs passes them to PutObject with.
_S3_HEADERS = {
    "Content-Type": "ContentType",
    "Content-Encoding": "ContentEncoding",
    "Cache-Control": "CacheControl",
}
_WORK_PREFIX = f"{paths.WORK_DIR}/"


def work_folder(url: str) -> Path:
    """The local work area of the store at ``url`` (see the module)."""
    root = os.environ.get("DWA_WORK_DIR")
    if not root:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        root = os.path.join(cache, "dicomweb-archive", "work")
    return Path(root) / quote(url.rstrip("/"), safe="")


@dataclass
class _Temporary:
    handle: IO[bytes]


class _RemoteFile:
    """One version of an object, measured once: a :class:`StoredFile` for slices."""

    def __init__(self, store: ObjectStore, path: str, size: int, version: str, head: bytes):
        self.store = store
        self.name = path
        self.size = size
        self.version = version
        self.head = head

    @property
    def path(self) -> Path:
        return Path(self.store.url) / self.name

    def pread(self, offset: int, length: int) -> bytes:
        if offset + length <= len(self.head):
            return self.head[offset : offset + length]
        data = self.store.fetch(self.name, offset, offset + length, if_match=self.version)
        if len(data) != length:
            raise OSError(f"{self.path}: shorter than expected")
        return data


class ObjectStore(StoreMixin):
    """The objects under ``url``; see the module."""

    def __init__(self, url: str, *, work: str | os.PathLike[str] | None = None) -> None:
        self.url = url
        options: dict[str, Any] = {}
        if url.lower().startswith(("s3://", "s3a://")):
            # Listings are never cached: other processes write the bucket too.
            options["use_listings_cache"] = False
        self.fs, root = fsspec.core.url_to_fs(url, **options)
        self.root = root.rstrip("/")
        self._s3 = s3requests.is_s3(self.fs)
        self.work = DirectoryStore(work if work is not None else work_folder(url))
        self._cache: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._cached_bytes = 0
        self._guard = threading.Lock()

    def _remote(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    @staticmethod
    def _is_work(path: str) -> bool:
        return path == paths.WORK_DIR or path.startswith(_WORK_PREFIX)

    def local_path(self, path: str) -> Path | None:
        return self.work.local_path(path) if self._is_work(path) else None

    # -- requests ------------------------------------------------------------------

    def _info(self, path: str) -> dict[str, Any] | None:
        """The object's size and version (``size``, ``ETag``); None when there is none."""
        if self._s3:
            return s3requests.head(self.fs, self._remote(path))
        try:
            info: dict[str, Any] = self.fs.info(self._remote(path))
        except FileNotFoundError:
            return None
        return info if info.get("type") == "file" else None

    @staticmethod
    def _version(info: dict[str, Any]) -> str:
        tag = info.get("ETag") or info.get("etag")
        if tag:
            return str(tag).strip('"')
        return f"{info.get('size')}-{info.get('mtime') or info.get('created') or ''}"

    def _get(self, path: str, **request: str) -> s3requests.Answer | None:
        return s3requests.get(self.fs, self._remote(path), f"{self.url}/{path}", **request)

    def fetch(self, path: str, start: int, stop: int, *, if_match: str | None = None) -> bytes:
        """The bytes ``[start, stop)`` of the object (of version ``if_match`` only)."""
        if stop <= start:
            return b""
        if not self._s3:
            try:
                return bytes(self.fs.cat_file(self._remote(path), start, stop))
            except FileNotFoundError:
                raise not_found(path) from None
        request = {"Range": f"bytes={start}-{stop - 1}"}
        if if_match:
            request["IfMatch"] = f'"{if_match}"'
        answer = self._get(path, **request)
        assert answer is not None
        return answer[1]

    def _headers(self, path: str, head: bytes) -> dict[str, str]:
        if not self._s3:
            return {}
        return {_S3_HEADERS[k]: v for k, v in static_headers(path, head).items()}

    def _same(self, path: str, size: int, digest: Any, content: Any) -> bool:
        """Whether the object holds these bytes: size, then ETag (MD5) or the bytes."""
        info = self._info(path)
        if info is None or info.get("size") != size:
            return False
        tag = str(info.get("ETag") or "").strip('"')
        if tag and "-" not in tag:
            return bool(tag == digest().hexdigest())
        return bool(self.read(path) == content())

    def _forget(self, path: str) -> None:
        with self._guard:
            cached = self._cache.pop(path, None)
            if cached is not None:
                self._cached_bytes -= len(cached[1])

    # -- reading ----------------------------------------------------------------

    def read(self, path: str) -> bytes:
        if self._is_work(path):
            return self.work.read(path)
        if self._s3:  # one GET (s3fs' cat_file asks for the size first)
            answer = self._get(path)
            assert answer is not None
            return answer[1]
        try:
            return bytes(self.fs.cat_file(self._remote(path)))
        except FileNotFoundError:
            raise not_found(path) from None

    def read_range(self, path: str, start: int, stop: int) -> bytes:
        if self._is_work(path):
            return self.work.read_range(path, start, stop)
        return self.fetch(path, max(0, start), stop)

    def iter_bytes(
        self, path: str, start: int = 0, stop: int | None = None, chunk_size: int = CHUNK
    ) -> Iterator[bytes]:
        if self._is_work(path):
            yield from self.work.iter_bytes(path, start, stop, chunk_size)
            return
        located = self._located(path) if self._s3 else self.locate(path)
        assert located is not None
        end = located.length if stop is None else min(stop, located.length)
        for position in range(max(0, start), end, chunk_size):
            yield located.part(position, min(position + chunk_size, end)).read()

    def stat(self, path: str) -> Stat:
        if self._is_work(path):
            return self.work.stat(path)
        info = self._info(path)
        if info is None:
            raise not_found(path)
        return Stat(int(info["size"]), self._version(info))

    def stat_tree(self, folder: str) -> dict[str, Stat] | None:
        if self._is_work(folder) or not self._s3:
            return None
        listed = s3requests.tree(self.fs, self._remote(folder))
        return {
            f"{folder}/{name}": Stat(int(info["size"]), self._version(info))
            for name, info in listed.items()
        }

    def exists(self, path: str) -> bool:
        if self._is_work(path):
            return self.work.exists(path)
        if not self._s3:
            return bool(self.fs.exists(self._remote(path)))
        return s3requests.exists(self.fs, self._remote(path))

    def list(self, path: str) -> list[Entry]:
        if self._is_work(path):
            return self.work.list(path)
        remote = self._remote(path)
        if self._s3:
            return s3requests.children(self.fs, remote)
        try:
            found = self.fs.ls(remote, detail=True)
        except FileNotFoundError:
            return []
        entries = {
            Entry(item["name"].rstrip("/").rsplit("/", 1)[-1], item["type"] == "directory")
            for item in found
            if item["name"].rstrip("/") != remote
        }
        return sorted(entries)

    def locate(self, path: str) -> Slice | None:
        """The object as a slice read by ranged GETs of the version measured now."""
        if self._is_work(path):
            return self.work.locate(path)
        if not self._s3:
            info = self._info(path)
            if info is None:
                raise not_found(path)
            size = int(info["size"])
            head = self.fetch(path, 0, min(size, PREFETCH))
            return Slice(_RemoteFile(self, path, size, self._version(info), head), 0, size)
        return self._located(path)

    def _located(self, path: str) -> Slice:
        with self._guard:
            cached = self._cache.get(path)
        request = {"Range": f"bytes=0-{PREFETCH - 1}"}
        if cached is not None:
            request["IfNoneMatch"] = f'"{cached[0]}"'
        answer = self._get(path, **request)
        if answer is None:
            assert cached is not None
            version, head = cached
            size = len(head)
        else:
            meta, head = answer
            version = str(meta.get("ETag", "")).strip('"')
            size = int(str(meta.get("ContentRange", "")).rpartition("/")[2] or len(head))
            if not meta:  # an empty object has no range to answer
                stat = self.stat(path)
                size, version = stat.size, stat.version
            if size <= PREFETCH:
                self._remember(path, version, head)
        return Slice(_RemoteFile(self, path, size, version, head), 0, size)

    def _remember(self, path: str, version: str, data: bytes) -> None:
        with self._guard:
            old = self._cache.pop(path, None)
            self._cached_bytes += len(data) - (len(old[1]) if old else 0)
            self._cache[path] = (version, data)
            while self._cached_bytes > CACHE_BYTES:
                _, (_, dropped) = self._cache.popitem(last=False)
                self._cached_bytes -= len(dropped)

    # -- writing ----------------------------------------------------------------

    def write(self, path: str, *parts: bytes) -> bool:
        if self._is_work(path):
            return self.work.write(path, *parts)
        data = b"".join(parts)
        if self._same(path, len(data), lambda: hashlib.md5(data), lambda: data):
            return False
        self._forget(path)
        self.fs.pipe_file(self._remote(path), data, **self._headers(path, data[:HEAD_SIZE]))
        return True

    def write_if_absent(self, path: str, *parts: bytes) -> bool:
        if self._is_work(path):
            return self.work.write_if_absent(path, *parts)
        if self._info(path) is not None:
            return False
        return self.write(path, *parts)

    @contextlib.contextmanager
    def temporary_file(self) -> Iterator[TemporaryFile]:
        """A local file, read back when committed (uploaded)."""
        folder = self.work.local_path(f"{paths.WORK_DIR}/tmp")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as handle:
            yield _Temporary(handle)

    def commit(self, temporary: TemporaryFile, path: str) -> bool:
        temporary.handle.flush()
        if self._is_work(path):
            temporary.handle.seek(0)
            return self.work.write(path, temporary.handle.read())
        return self._upload(temporary.handle, path)

    def _upload(self, handle: IO[bytes], path: str, *, compare: bool = True) -> bool:
        """Put the content of ``handle`` at ``path`` unless (``compare``) the object holds it."""

        def digest() -> Any:
            handle.seek(0)
            digest = hashlib.md5()
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
            return digest

        def content() -> bytes:
            handle.seek(0)
            return handle.read()

        size = handle.seek(0, os.SEEK_END)
        if compare and self._same(path, size, digest, content):
            return False
        handle.seek(0)
        headers = self._headers(path, handle.read(HEAD_SIZE))
        handle.seek(0)
        self._forget(path)
        with self.fs.open(self._remote(path), "wb", **headers) as out:
            shutil.copyfileobj(handle, out, CHUNK)
        return True

    def move(self, source: str, target: str) -> None:
        if self._is_work(source) and self._is_work(target):
            self.work.move(source, target)
            return
        if self._is_work(source) and not self._is_work(target):
            local = self.work.local_path(source)
            try:
                with open(local, "rb") as handle:  # a move replaces: nothing to compare
                    self._upload(handle, target, compare=False)
            except FileNotFoundError:
                raise not_found(source) from None
        else:
            self.write(target, self.read(source))
        self.remove(source)

    def remove(self, path: str) -> bool:
        if self._is_work(path):
            return self.work.remove(path)
        if self._info(path) is None:
            return False
        self._forget(path)
        self.fs.rm_file(self._remote(path))
        return True

    def remove_tree(self, path: str) -> bool:
        if self._is_work(path):
            return self.work.remove_tree(path)
        prefix = f"{self._remote(path)}/"
        try:
            names = [name for name in self.fs.find(prefix) if name.startswith(prefix)]
        except FileNotFoundError:
            names = []
        if not names:
            return False
        for name in names:
            self._forget(name[len(self.root) + 1 :])
        self.fs.rm(names)
        return True

    # -- the store itself ---------------------------------------------------------

    def lock(self, name: str, *, shared: bool = False) -> contextlib.AbstractContextManager[None]:
        return self.work.lock(name, shared=shared)

    def remove_stale_temporaries(self) -> None:
        self.work.remove_stale_temporaries()
