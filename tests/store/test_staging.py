"""Staged instance updates: applied whole, finished after a kill, dropped when unfinished."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest

from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import Store, dumps_json, files_under, gunzip, gzip_bytes
from dicomweb_archive.store.directory import DirectoryStore
from dicomweb_archive.store.memory import MemoryStore
from dicomweb_archive.store.staging import (
    STAGING_DIR,
    InstanceUpdate,
    instance_lock,
    recover_staged,
)
from dicomweb_archive.types import InstanceKey

KEY = InstanceKey("1.2", "1.2.3", "1.2.3.4")


@pytest.fixture(params=["memory", "directory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return MemoryStore() if request.param == "memory" else DirectoryStore(tmp_path / "a")


def stored(store: Store) -> dict[str, bytes]:
    return {path: store.read(path) for path in files_under(store, "studies")}


def old_instance(store: Store) -> None:
    for number in (1, 2, 3):
        store.write(paths.frame_path(*KEY, number), b"old %d" % number)
    store.write(paths.instance_metadata(*KEY), b"old metadata")
    store.write(f"{paths.htj2k_dir(*KEY)}/1", b"alternate of the old frames")


def stage_new(update: InstanceUpdate) -> None:
    update.stage("frames/1", b"new 1")
    update.stage("frames/2", b"old 2")  # unchanged: not staged
    update.stage_frames_count(2)
    update.stage(paths.METADATA, b"new metadata")


def new_instance() -> dict[str, bytes]:
    return {
        paths.frame_path(*KEY, 1): b"new 1",
        paths.frame_path(*KEY, 2): b"old 2",
        paths.instance_metadata(*KEY): b"new metadata",
    }


def test_commit_replaces_the_instance_whole(store: Store) -> None:
    old_instance(store)
    update = InstanceUpdate(store, KEY)
    stage_new(update)
    assert stored(store)[paths.frame_path(*KEY, 1)] == b"old 1"  # nothing changes before
    update.commit(frames=2, bulk=[("studies/1.2/bulkdata/ab", (b"bulk",))], drop_htj2k=True)
    assert stored(store) == {**new_instance(), "studies/1.2/bulkdata/ab": b"bulk"}
    assert not store.list(STAGING_DIR)
    assert update.changed and update.frames_changed


def test_the_same_bytes_change_nothing(store: Store) -> None:
    old_instance(store)
    update = InstanceUpdate(store, KEY)
    update.stage("frames/1", b"old 1")
    update.stage_frames_count(3)
    update.commit(frames=3, bulk=[], drop_htj2k=False)
    assert not update.changed
    assert not store.list(STAGING_DIR)


@pytest.mark.parametrize("level", [1, 6, 9])
def test_the_same_json_at_any_level_changes_nothing(store: Store, level: int) -> None:
    """An instance's documents compare by their JSON: those an older version
    compressed at another level are the same documents, left as they are."""
    document = [{"00080018": {"vr": "UI", "Value": [KEY.sop_instance_uid]}}]
    old_instance(store)
    written = gzip_bytes(dumps_json(document), level)
    store.write(paths.instance_metadata(*KEY), written)
    update = InstanceUpdate(store, KEY)
    assert not update.stage_json(paths.METADATA, document)
    update.commit(frames=3, bulk=[], drop_htj2k=False)
    assert not update.changed
    assert store.read(paths.instance_metadata(*KEY)) == written


@pytest.mark.parametrize("stored_bytes", [b"", b"\x1f\x8b\x08\x00 cut", b"old metadata"])
def test_other_json_or_a_part_written_document_is_replaced(
    store: Store, stored_bytes: bytes
) -> None:
    document = [{"00200013": {"vr": "IS", "Value": [2]}}]
    old_instance(store)
    store.write(paths.instance_metadata(*KEY), stored_bytes)
    update = InstanceUpdate(store, KEY)
    assert update.stage_json(paths.METADATA, document)
    update.commit(frames=3, bulk=[], drop_htj2k=False)
    assert update.changed
    assert orjson.loads(gunzip(store.read(paths.instance_metadata(*KEY)))) == document


def test_a_discarded_update_leaves_the_instance(store: Store) -> None:
    old_instance(store)
    before = stored(store)
    update = InstanceUpdate(store, KEY)
    stage_new(update)
    update.discard()
    assert stored(store) == before
    assert not store.list(STAGING_DIR)


class Killed(Exception):
    pass


def test_a_killed_commit_is_finished_by_the_next_run(store: Store) -> None:
    old_instance(store)
    update = InstanceUpdate(store, KEY)
    stage_new(update)
    moves = 0
    real_move = store.move

    def move_then_die(source: str, target: str) -> None:
        nonlocal moves
        if moves == 1:
            raise Killed
        moves += 1
        real_move(source, target)

    store.move = move_then_die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        update.commit(frames=2, bulk=[], drop_htj2k=True)
    store.move = real_move  # type: ignore[method-assign]
    assert recover_staged(Archive(store)) == [KEY]
    assert stored(store) == new_instance()
    assert not store.list(STAGING_DIR)


def test_an_unfinished_staging_is_dropped(store: Store) -> None:
    old_instance(store)
    before = stored(store)
    stage_new(InstanceUpdate(store, KEY))  # killed before its commit point
    assert recover_staged(Archive(store)) == []
    assert stored(store) == before
    assert not store.list(STAGING_DIR)


def test_an_unfinished_staging_is_never_applied_by_the_next_update(store: Store) -> None:
    old_instance(store)
    stage_new(InstanceUpdate(store, KEY))  # killed before its commit point
    update = InstanceUpdate(store, KEY)
    assert not update.recover()
    update.stage("frames/3", b"new 3")
    update.commit(frames=3, bulk=[], drop_htj2k=False)
    assert stored(store) == {
        paths.frame_path(*KEY, 1): b"old 1",
        paths.frame_path(*KEY, 2): b"old 2",
        paths.frame_path(*KEY, 3): b"new 3",
        paths.instance_metadata(*KEY): b"old metadata",
        f"{paths.htj2k_dir(*KEY)}/1": b"alternate of the old frames",
    }
    assert not store.list(STAGING_DIR)


def test_a_live_writers_staging_is_left_alone(store: Store) -> None:
    old_instance(store)
    staged = threading.Event()
    recovered = threading.Event()

    def writer() -> None:
        with store.lock(instance_lock(KEY)):
            update = InstanceUpdate(store, KEY)
            stage_new(update)
            staged.set()
            time.sleep(0.3)
            assert not recovered.is_set()  # the sweep waits for the lock
            update.commit(frames=2, bulk=[], drop_htj2k=False)

    thread = threading.Thread(target=writer)
    thread.start()
    staged.wait(5)
    recover_staged(Archive(store))
    recovered.set()
    thread.join()
    assert stored(store)[paths.instance_metadata(*KEY)] == b"new metadata"


def test_a_killed_commit_is_finished_for_its_own_instance(store: Store) -> None:
    """One SOP Instance UID in two series: the staging names the instance it is for."""
    old_instance(store)
    update = InstanceUpdate(store, KEY)
    stage_new(update)
    store.write_json_gz(
        f"{STAGING_DIR}/{KEY.sop_instance_uid}~commit.json.gz",
        {"instance": list(KEY), "frames": 2, "dropHtj2k": False},
    )
    other = InstanceKey(KEY.study_instance_uid, "1.2.3.9", KEY.sop_instance_uid)
    assert InstanceUpdate(store, other).recover()
    assert stored(store)[paths.instance_metadata(*KEY)] == b"new metadata"
    assert not store.exists(paths.instance_metadata(*other))


def test_a_failure_past_the_commit_point_is_finished_not_dropped(store: Store) -> None:
    old_instance(store)
    update = InstanceUpdate(store, KEY)
    stage_new(update)
    real_move = store.move

    def move_fails(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    store.move = move_fails  # type: ignore[method-assign]
    with pytest.raises(OSError):
        update.commit(frames=2, bulk=[], drop_htj2k=True)
    update.abandon()  # what a failed write does: too late to drop
    store.move = real_move  # type: ignore[method-assign]
    assert store.list(STAGING_DIR)
    assert recover_staged(Archive(store)) == [KEY]
    assert stored(store) == new_instance()


def test_a_failure_before_the_commit_point_is_dropped(store: Store) -> None:
    old_instance(store)
    update = InstanceUpdate(store, KEY)
    stage_new(update)
    update.abandon()
    assert not store.list(STAGING_DIR)
    assert stored(store) == {
        **{paths.frame_path(*KEY, n): b"old %d" % n for n in (1, 2, 3)},
        paths.instance_metadata(*KEY): b"old metadata",
        f"{paths.htj2k_dir(*KEY)}/1": b"alternate of the old frames",
    }


def test_a_new_instance_is_applied_without_a_commit_marker(store: Store) -> None:
    update = InstanceUpdate(store, KEY)
    assert update.new
    stage_new(update)
    markers = []
    real_write = store.write_json_gz

    def write_json_gz(path: str, document: object) -> bool:
        markers.append(path)
        return real_write(path, document)

    store.write_json_gz = write_json_gz  # type: ignore[method-assign]
    update.commit(frames=2, bulk=[], drop_htj2k=False)
    assert markers == []
    assert stored(store) == new_instance()
    assert not store.list(STAGING_DIR)


def test_a_new_instance_killed_while_applied_is_made_whole_by_the_next_writer(
    store: Store,
) -> None:
    update = InstanceUpdate(store, KEY)
    stage_new(update)
    real_move = store.move

    def move_then_die(source: str, target: str) -> None:
        if target.endswith(paths.METADATA):
            raise Killed
        real_move(source, target)

    store.move = move_then_die  # type: ignore[method-assign]
    with pytest.raises(Killed):
        update.commit(frames=2, bulk=[], drop_htj2k=False)
    store.move = real_move  # type: ignore[method-assign]
    # In place, no metadata names them: no instance for any reader.
    assert paths.instance_metadata(*KEY) not in stored(store)
    assert recover_staged(Archive(store)) == []
    assert not store.list(STAGING_DIR)
    again = InstanceUpdate(store, KEY)
    assert not again.new
    stage_new(again)
    again.commit(frames=2, bulk=[], drop_htj2k=False)
    assert stored(store) == new_instance()


def test_a_new_instances_frames_go_straight_into_place(store: Store) -> None:
    update = InstanceUpdate(store, KEY)
    update.stage("frames/1", b"new 1")
    assert store.read(paths.frame_path(*KEY, 1)) == b"new 1"
    assert not store.list(STAGING_DIR)
    update.stage(paths.METADATA, b"new metadata")  # metadata.gz is staged, put in place last
    assert not store.exists(paths.instance_metadata(*KEY))
    update.commit(frames=1, bulk=[], drop_htj2k=False)
    assert stored(store) == {
        paths.frame_path(*KEY, 1): b"new 1",
        paths.instance_metadata(*KEY): b"new metadata",
    }
    assert not store.list(STAGING_DIR)


def test_a_failed_new_instance_leaves_the_folders_others_filled(store: Store) -> None:
    other = paths.instance_metadata(KEY.study_instance_uid, KEY.series_instance_uid, "1.2.3.5")
    store.write(other, b"another instance of the series")
    update = InstanceUpdate(store, KEY)
    update.stage("frames/1", b"new 1")
    update.stage("frames/2", b"new 2")
    update.abandon()
    assert stored(store) == {other: b"another instance of the series"}
    assert not store.exists(paths.instance_dir(*KEY))


def test_a_new_instance_failing_before_it_is_applied_leaves_nothing(store: Store) -> None:
    update = InstanceUpdate(store, KEY)
    update.stage("frames/1", b"new 1")
    update.abandon()
    assert stored(store) == {}
    assert not store.exists(paths.instance_dir(*KEY))
    assert not store.list(STAGING_DIR)
    # Nor the folders its frames made, up to its study's.
    assert not store.exists(paths.study_dir(KEY.study_instance_uid))
    if isinstance(store, DirectoryStore):
        assert store.root.joinpath("studies").is_dir()
