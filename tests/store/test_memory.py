"""The memory backend: versions per write, no local files."""

from __future__ import annotations

from dicomweb_archive.store.memory import MemoryStore


def test_every_change_is_a_new_version() -> None:
    store = MemoryStore()
    store.write("a", b"1")
    first = store.stat("a").version
    store.write("a", b"1")
    assert store.stat("a").version == first
    store.write("a", b"2")
    assert store.stat("a").version != first
    assert store.locate("a") is None
    assert store.local_path("a") is None
