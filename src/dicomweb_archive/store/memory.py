"""A store in memory, for tests: the same behaviour as a folder, no files.

Locks are shared by the threads of the process that holds the store.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dicomweb_archive.store.base import CHUNK, Entry, Stat, StoreMixin, TemporaryFile, not_found
from dicomweb_archive.store.slices import Slice

_VERSIONS = itertools.count(1)


@dataclass
class _Temporary:
    handle: io.BytesIO = field(default_factory=io.BytesIO)


class _Lock:
    """A readers-writer lock: shared holders exclude only exclusive ones."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextlib.contextmanager
    def hold(self, shared: bool) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._writer and (shared or self._readers == 0))
            if shared:
                self._readers += 1
            else:
                self._writer = True
        try:
            yield
        finally:
            with self._condition:
                if shared:
                    self._readers -= 1
                else:
                    self._writer = False
                self._condition.notify_all()


class MemoryStore(StoreMixin):
    """Files kept in a dictionary, each with a version that changes on every write."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self.files: dict[str, tuple[bytes, int]] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, _Lock] = {}

    def local_path(self, path: str) -> Path | None:
        return None

    def _get(self, path: str) -> bytes:
        try:
            return self.files[path][0]
        except KeyError:
            raise not_found(path) from None

    # -- reading ----------------------------------------------------------------

    def read(self, path: str) -> bytes:
        return self._get(path)

    def read_range(self, path: str, start: int, stop: int) -> bytes:
        return self._get(path)[max(0, start) : max(0, stop)]

    def iter_bytes(
        self, path: str, start: int = 0, stop: int | None = None, chunk_size: int = CHUNK
    ) -> Iterator[bytes]:
        data = self._get(path)
        end = len(data) if stop is None else min(stop, len(data))
        for position in range(max(0, start), end, chunk_size):
            yield data[position : min(position + chunk_size, end)]

    def stat(self, path: str) -> Stat:
        try:
            data, version = self.files[path]
        except KeyError:
            raise not_found(path) from None
        return Stat(len(data), f"m{version:x}")

    def exists(self, path: str) -> bool:
        prefix = f"{path}/"
        return path in self.files or any(name.startswith(prefix) for name in list(self.files))

    def list(self, path: str) -> list[Entry]:
        prefix = f"{path}/"
        found: dict[str, bool] = {}
        for name in list(self.files):
            if name.startswith(prefix):
                child, slash, _ = name[len(prefix) :].partition("/")
                found[child] = found.get(child, False) or bool(slash)
        return sorted(Entry(name, is_folder) for name, is_folder in found.items())

    def locate(self, path: str) -> Slice | None:
        self._get(path)
        return None

    # -- writing ----------------------------------------------------------------

    def write(self, path: str, *parts: bytes) -> bool:
        data = b"".join(parts)
        with self._guard:
            if path in self.files and self.files[path][0] == data:
                return False
            self.files[path] = (data, next(_VERSIONS))
        return True

    def write_if_absent(self, path: str, *parts: bytes) -> bool:
        if path in self.files:
            return False
        return self.write(path, *parts)

    @contextlib.contextmanager
    def temporary_file(self) -> Iterator[TemporaryFile]:
        yield _Temporary()

    def commit(self, temporary: TemporaryFile, path: str) -> bool:
        assert isinstance(temporary, _Temporary)
        return self.write(path, temporary.handle.getvalue())

    def move(self, source: str, target: str) -> None:
        with self._guard:
            try:
                self.files[target] = self.files.pop(source)
            except KeyError:
                raise not_found(source) from None

    def remove(self, path: str) -> bool:
        with self._guard:
            return self.files.pop(path, None) is not None

    def remove_tree(self, path: str) -> bool:
        prefix = f"{path}/"
        with self._guard:
            names = [name for name in self.files if name.startswith(prefix)]
            for name in names:
                del self.files[name]
        return bool(names)

    # -- the store itself ---------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, name: str, *, shared: bool = False) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(name, _Lock())
        with lock.hold(shared):
            yield

    def remove_stale_temporaries(self) -> None:
        pass
