"""One behaviour suite for every store backend: what callers may rely on.

Every backend runs the reading tests; the writable ones (a folder, memory, an
object store over fsspec's memory file system and over a real S3 API) run the
rest.  A packed study is the read-only backend: its files are written into
a folder first, packed, and read back from the ZIP.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dicomweb_archive.errors import ResourceNotFoundError, StoreError
from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import Entry, ReadableStore, Store, files_under, folders
from dicomweb_archive.store.directory import DirectoryStore
from dicomweb_archive.store.manifest import ArchiveOptions
from dicomweb_archive.store.memory import MemoryStore
from dicomweb_archive.store.objectstore import ObjectStore
from dicomweb_archive.store.studyzip import StudyZip, write_study_zip
from tests.objectstore import MotoServer

STUDY = "1.2.3"
BASE = f"studies/{STUDY}"
#: The files every reading test finds in place.
FILES = {
    f"{BASE}/metadata.gz": b"\x1f\x8b document",
    f"{BASE}/series/1.4/instances/1.5/frames/1": bytes(range(256)) * 40,
    f"{BASE}/series/1.4/instances/1.5/frames/2": b"two",
    f"{BASE}/series/1.4/metadata.gz": b"series",
    f"{BASE}/bulkdata/ab/cd": b"",
}

Factory = Callable[[Path], Store]


def _s3_store(tmp: Path) -> Store:
    """An object store in a new bucket of the session's S3 server (see :func:`store`)."""
    assert S3_SERVER, "the s3_server fixture is requested first"
    return ObjectStore(f"s3://{S3_SERVER[0].bucket()}/archive", work=tmp / "work")


S3_SERVER: list[MotoServer] = []
WRITABLE: dict[str, Factory] = {
    "directory": lambda tmp: DirectoryStore(tmp / "store"),
    "memory": lambda tmp: MemoryStore(),
    "objectstore-memory": lambda tmp: ObjectStore(
        f"memory://{uuid.uuid4().hex}/archive", work=tmp / "work"
    ),
    "objectstore-s3": _s3_store,
}


def _with_server(request: pytest.FixtureRequest) -> None:
    if request.param.endswith("-s3") and not S3_SERVER:
        S3_SERVER.append(request.getfixturevalue("s3_server"))


@pytest.fixture(params=sorted(WRITABLE))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    _with_server(request)
    made = WRITABLE[request.param](tmp_path)
    yield made
    made.close()


def _zip_store(tmp_path: Path) -> ReadableStore:
    folder = DirectoryStore(tmp_path / "folder")
    for name, data in FILES.items():
        folder.write(name, data)
    with open(tmp_path / "study.zip", "wb") as out:
        write_study_zip(folder, STUDY, out, ArchiveOptions())
    return StudyZip(tmp_path / "study.zip", study=STUDY)


def _filled(factory: Factory) -> Callable[[Path], ReadableStore]:
    def make(tmp_path: Path) -> ReadableStore:
        made = factory(tmp_path)
        for name, data in FILES.items():
            made.write(name, data)
        return made

    return make


def _packed_archive(tmp_path: Path) -> ReadableStore:
    """An archive whose study is packed in place: read through its ZIP."""
    store = DirectoryStore(tmp_path / "archive")
    for name, data in FILES.items():
        store.write(name, data)
    with store.temporary_file() as tmp:
        write_study_zip(store, STUDY, tmp.handle, ArchiveOptions())
        store.commit(tmp, paths.study_zip(STUDY))
    store.remove_tree(BASE)
    return Archive(store)


READABLE: dict[str, Callable[[Path], ReadableStore]] = {
    **{name: _filled(factory) for name, factory in WRITABLE.items()},
    "zip": _zip_store,
    "archive-folders": lambda tmp: Archive(_filled(WRITABLE["memory"])(tmp)),  # type: ignore[arg-type]
    "archive-packed": _packed_archive,
}


@pytest.fixture(params=sorted(READABLE))
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadableStore]:
    _with_server(request)
    made = READABLE[request.param](tmp_path)
    yield made
    made.close()


# -- reading (every backend) ---------------------------------------------------------


def test_backends_follow_the_protocol(filled: ReadableStore, store: Store) -> None:
    assert isinstance(filled, ReadableStore)
    assert isinstance(store, Store)


def test_read_whole_files_and_ranges(filled: ReadableStore) -> None:
    for name, data in FILES.items():
        assert filled.read(name) == data
        assert filled.stat(name).size == len(data)
    frame = FILES[f"{BASE}/series/1.4/instances/1.5/frames/1"]
    name = f"{BASE}/series/1.4/instances/1.5/frames/1"
    assert filled.read_range(name, 10, 300) == frame[10:300]
    assert filled.read_range(name, len(frame) - 3, len(frame) + 100) == frame[-3:]
    assert b"".join(filled.iter_bytes(name, chunk_size=1000)) == frame
    assert [len(c) for c in filled.iter_bytes(name, 5, 2505, chunk_size=1000)] == [1000, 1000, 500]
    assert b"".join(filled.iter_bytes(name, 5, 2505)) == frame[5:2505]


def test_missing_files_are_not_found(filled: ReadableStore) -> None:
    missing = f"{BASE}/series/1.4/instances/9.9/metadata.gz"
    assert not filled.exists(missing)
    for call in (filled.read, filled.stat, filled.locate):
        with pytest.raises(ResourceNotFoundError):
            call(missing)
    with pytest.raises(ResourceNotFoundError):
        b"".join(filled.iter_bytes(missing))


def test_folders_exist_through_their_files(filled: ReadableStore) -> None:
    assert filled.exists(f"{BASE}/series/1.4")
    assert filled.exists(f"{BASE}/metadata.gz")
    assert not filled.exists(f"{BASE}/series/1.9")
    assert filled.list(f"{BASE}/series/1.4") == [
        Entry("instances", True),
        Entry("metadata.gz", False),
    ]
    assert filled.list(f"{BASE}/series/1.9") == []
    assert folders(filled, BASE) == ["bulkdata", "series"]
    assert list(files_under(filled, BASE)) == sorted(FILES)


def test_located_slices_hold_the_bytes(filled: ReadableStore) -> None:
    name = f"{BASE}/series/1.4/instances/1.5/frames/2"
    try:
        located = filled.locate(name)
    except StoreError:  # an archive over a store without local files
        return
    if located is None:  # a backend without local files
        return
    assert located.read() == b"two"
    assert located.version == filled.stat(name).version


# -- writing -----------------------------------------------------------------------


def test_writes_are_skipped_when_unchanged(store: Store) -> None:
    assert store.write("a/b/c", b"one", b"two")
    before = store.stat("a/b/c")
    assert not store.write("a/b/c", b"onetwo")
    assert store.stat("a/b/c") == before
    assert store.write("a/b/c", b"three")
    assert store.stat("a/b/c") != before
    assert store.read("a/b/c") == b"three"


def test_write_if_absent_keeps_the_first(store: Store) -> None:
    assert store.write_if_absent("bulk/ab", b"first")
    assert not store.write_if_absent("bulk/ab", b"second")
    assert store.read("bulk/ab") == b"first"


def test_json_documents_are_deterministic(store: Store) -> None:
    document = {"b": [1, 2], "a": {"vr": "UI", "Value": ["1.2"]}}
    assert store.write_json_gz("doc.json.gz", document)
    assert store.read_json_gz("doc.json.gz") == document
    assert not store.write_json_gz("doc.json.gz", dict(reversed(document.items())))
    other = MemoryStore()
    other.write_json_gz("doc.json.gz", document)
    assert store.read("doc.json.gz") == other.read("doc.json.gz")


def test_temporary_files_commit_or_vanish(store: Store) -> None:
    with store.temporary_file() as tmp:
        tmp.handle.write(b"large " * 1000)
        assert store.commit(tmp, "big/file")
    assert store.read("big/file") == b"large " * 1000
    with store.temporary_file() as tmp:
        tmp.handle.write(b"large " * 1000)
        assert not store.commit(tmp, "big/file")
    with store.temporary_file() as tmp:
        tmp.handle.write(b"never committed")
    assert store.list("big") == [Entry("file", False)]


def test_move_replaces_the_target(store: Store) -> None:
    store.write("staged/1", b"new")
    store.write("frames/1", b"old")
    store.move("staged/1", "frames/1")
    assert store.read("frames/1") == b"new"
    assert not store.exists("staged/1")
    with pytest.raises(ResourceNotFoundError):
        store.move("staged/1", "frames/1")


def test_remove_files_and_trees(store: Store) -> None:
    for name in ("s/a/1", "s/a/2", "s/b/1", "t"):
        store.write(name, b"x")
    assert store.remove("s/a/1")
    assert not store.remove("s/a/1")
    assert not store.exists("s/a/1")
    assert store.remove_tree("s/a")
    assert not store.remove_tree("s/a")
    assert not store.exists("s/a/2")
    assert store.read("s/b/1") == b"x"
    assert store.read("t") == b"x"


def test_only_empty_folders_are_removed_as_such(store: Store) -> None:
    store.write("s/a/1", b"x")
    assert not store.remove_empty_folder("s/a")
    assert not store.remove_empty_folder("s")
    assert store.read("s/a/1") == b"x"
    store.remove("s/a/1")
    # Gone: with its last file, or now (a folder of its own on a local disk).
    store.remove_empty_folder("s/a")
    store.remove_empty_folder("s")
    assert not store.exists("s/a") and not store.exists("s")
    assert store.list("s") == []
    assert not store.remove_empty_folder("s")


def test_children_are_stat_in_one_look(store: Store) -> None:
    for name in ("s/a/m", "s/b/m", "s/b/other", "s/c/other", "s/m"):
        store.write(name, b"x" * len(name))
    found = store.stat_children("s", "m")
    assert found == {"a": store.stat("s/a/m"), "b": store.stat("s/b/m")}
    assert store.stat_children("none", "m") == {}


def test_a_tree_is_stat_in_one_listing_or_left_to_stat(store: Store) -> None:
    names = ("t/m", "t/a/m", "t/a/frames/1", "t/a/frames/12", "t/b/c/d", "other/m", "t2/m")
    for name in names:
        store.write(name, b"x" * len(name))
    found = store.stat_tree("t")
    if found is None:  # a stat per file costs this backend no more
        return
    assert found == {name: store.stat(name) for name in names if name.startswith("t/")}
    assert store.stat_tree("t/a") == {
        name: store.stat(name) for name in names if name.startswith("t/a/")
    }
    assert store.stat_tree("none") == {}


def test_a_packed_studys_tree_is_left_to_stat(tmp_path: Path) -> None:
    archive = _packed_archive(tmp_path)
    assert isinstance(archive, Archive)
    assert archive.stat_tree(f"{BASE}/series/1.4/instances/1.5") is None


def test_exclusive_locks_exclude_and_shared_ones_share(store: Store) -> None:
    events: list[str] = []

    def exclusive() -> None:
        with store.lock("study-x"):
            events.append("exclusive")

    with store.lock("study-x", shared=True), store.lock("other"):
        worker = threading.Thread(target=exclusive)
        worker.start()
        time.sleep(0.2)
        shared_reader = threading.Thread(target=_hold_shared, args=(store, events))
        shared_reader.start()
        shared_reader.join(5)
        events.append("released")
    worker.join(5)
    # A shared holder does not wait for another; the exclusive one waits for both.
    assert events == ["shared", "released", "exclusive"]


def _hold_shared(store: Store, events: list[str]) -> None:
    with store.lock("study-x", shared=True):
        events.append("shared")
