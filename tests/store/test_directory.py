"""The folder backend's own promises: renames into place, times kept, tidy work area."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from dicomweb_archive.errors import StoreError
from dicomweb_archive.model import paths
from dicomweb_archive.store.directory import DirectoryStore


def test_unchanged_writes_keep_the_modification_time(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    store.write("a/b", b"x")
    os.utime(tmp_path / "a/b", ns=(1, 1))
    assert not store.write("a/b", b"x")
    assert os.stat(tmp_path / "a/b").st_mtime_ns == 1
    with store.temporary_file() as tmp:
        tmp.handle.write(b"x")
        assert not store.commit(tmp, "a/b")
    assert os.stat(tmp_path / "a/b").st_mtime_ns == 1


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    store.write("a", b"1")
    with store.temporary_file() as tmp:
        tmp.handle.write(b"2")
        store.commit(tmp, "b")
    assert os.listdir(tmp_path / paths.WORK_DIR / "tmp") == []
    assert (tmp_path / "b").read_bytes() == b"2"


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    work = tmp_path / paths.WORK_DIR / "tmp"
    work.mkdir(parents=True)
    (work / "old").write_bytes(b"")
    (work / "new").write_bytes(b"")
    stale = time.time() - 7200
    os.utime(work / "old", (stale, stale))
    store.remove_stale_temporaries()
    assert os.listdir(work) == ["new"]


def test_a_dead_writers_temporaries_go_at_once(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    work = tmp_path / paths.WORK_DIR / "tmp"
    work.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "30"])
    try:
        for pid in (dead.pid, live.pid, os.getpid()):
            (work / f"w-{pid}-0").write_bytes(b"partial")
        store.remove_stale_temporaries()
        assert sorted(os.listdir(work)) == sorted([f"w-{live.pid}-0", f"w-{os.getpid()}-0"])
    finally:
        live.kill()
        live.wait()


def test_a_file_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StoreError, match="not a folder"):
        DirectoryStore(tmp_path / "file")


def test_local_paths_and_slices(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    store.write("x/y", b"hello")
    assert store.local_path("x/y") == tmp_path / "x/y"
    located = store.locate("x/y")
    assert located.path == tmp_path / "x/y" and located.read() == b"hello"
