"""Renditions made on request: made once, then read; the cache kept within its budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomweb_archive.server.renditions import CACHE_DIR, RenditionCache
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import Store, files_under
from dicomweb_archive.store.directory import DirectoryStore
from dicomweb_archive.store.memory import MemoryStore


@pytest.fixture(params=["memory", "directory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return MemoryStore() if request.param == "memory" else DirectoryStore(tmp_path / "a")


def _held(store: Store) -> int:
    return sum(store.stat(path).size for path in files_under(store, CACHE_DIR))


def test_a_rendition_is_made_once(store: Store) -> None:
    cache = RenditionCache(Archive(store))
    made: list[str] = []

    def make() -> bytes:
        made.append("x")
        return b"rendition"

    assert cache.one("rendered", "frames/1|v1|jpeg", make) == b"rendition"
    assert cache.one("rendered", "frames/1|v1|jpeg", make) == b"rendition"
    assert made == ["x"]
    # A new version of the stored frame (or other parameters) is another rendition.
    assert cache.one("rendered", "frames/1|v2|jpeg", make) == b"rendition"
    assert cache.one("jpegls", "frames/1|v1|jpeg", make) == b"rendition"
    assert len(made) == 3


def test_the_cache_stays_within_its_budget(store: Store) -> None:
    budget = 40_000
    cache = RenditionCache(Archive(store), budget)
    for n in range(200):
        body = cache.one("htj2k", f"frames/{n}|v", lambda n=n: bytes([n % 256]) * 1000)
        assert body == bytes([n % 256]) * 1000  # made bytes are answered even when pruned
        assert _held(store) <= budget
    # Pruned to three quarters at most, then filled again: never empty, never over.
    assert budget // 2 <= _held(store) <= budget


def test_prune_removes_down_to_three_quarters(store: Store) -> None:
    cache = RenditionCache(Archive(store), budget=10**9)
    for n in range(20):
        cache.one("rendered", f"f{n}", lambda: b"x" * 100)
    cache.budget = 1000
    removed = cache.prune()
    assert (removed, _held(store)) == (1300, 700)  # 100-byte entries, down to 750 or less


def test_a_zero_budget_keeps_nothing(store: Store) -> None:
    cache = RenditionCache(Archive(store), budget=0)
    assert cache.one("rendered", "f", lambda: b"made") == b"made"
    assert _held(store) == 0
