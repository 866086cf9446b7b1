from __future__ import annotations

from dicomweb_archive.store.memory import MemoryStore
from dicomweb_archive.store.recall import Recall


def _metadata(sop: str) -> list[dict[str, object]]:
    return [{"00080018": {"vr": "UI", "Value": [sop]}, "00200013": {"vr": "IS", "Value": [1]}}]


def test_a_document_is_read_again_only_when_its_version_changed() -> None:
    store = MemoryStore()
    store.write_json_gz("a/metadata.gz", _metadata("1.1"))
    recall = Recall()
    first = recall.instances(store, "a/metadata.gz")
    assert [i.sop for i in first] == ["1.1"]
    assert recall.instances(store, "a/metadata.gz") is first  # not read again
    store.write_json_gz("a/metadata.gz", _metadata("1.2"))
    assert [i.sop for i in recall.instances(store, "a/metadata.gz")] == ["1.2"]
    assert len(recall) == 1


def test_memory_is_bounded_by_the_stored_bytes() -> None:
    store = MemoryStore()
    for n in range(10):
        store.write_json_gz(f"{n}/metadata.gz", _metadata(f"1.{n}"))
    size = store.stat("0/metadata.gz").size
    recall = Recall(limit=3 * size)
    for n in range(10):
        recall.instances(store, f"{n}/metadata.gz")
    assert len(recall) == 3
    # The least recently used went first.
    kept = recall.instances(store, "9/metadata.gz")
    assert recall.instances(store, "9/metadata.gz") is kept
