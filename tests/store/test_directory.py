"""The folder backend's own promises: renames into place, times kept, tidy work area."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from pathlib import Path

import pytest

from dicomweb_archive.errors import ResourceNotFoundError, StoreError
from dicomweb_archive.model import paths
from dicomweb_archive.store.base import Entry
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


def test_symbolic_links_are_not_followed(tmp_path: Path) -> None:
    """A link planted in the archive never reads a file of the machine."""
    secret = tmp_path / "outside" / "secret"
    secret.parent.mkdir()
    secret.write_bytes(b"secret")
    root = tmp_path / "archive"
    store = DirectoryStore(root)
    store.write("studies/1/a", b"kept")
    (root / "studies/1/file").symlink_to(secret)
    (root / "studies/1/folder").symlink_to(secret.parent)
    (root / "studies/1/inside").symlink_to(root / "studies/1/a")
    assert store.list("studies/1") == [
        Entry("a", False),
        Entry("file", False),
        Entry("folder", False),  # a link to a folder is not descended into
        Entry("inside", False),
    ]
    assert store.list("studies/1/folder") == []
    for path in ("studies/1/file", "studies/1/folder/secret", "studies/1/inside"):
        with pytest.raises(ResourceNotFoundError, match="symbolic link"):
            store.read(path)
        with pytest.raises(ResourceNotFoundError, match="symbolic link"):
            b"".join(store.iter_bytes(path))
        with pytest.raises(ResourceNotFoundError, match="symbolic link"):
            store.stat(path)
        with pytest.raises(ResourceNotFoundError, match="symbolic link"):
            store.locate(path)
    assert store.read("studies/1/a") == b"kept"
    # Nor does a look at the children: a linked folder is none of them.
    (root / "studies/2").symlink_to(root / "studies/1")
    store.write("studies/1/b/a", b"kept")
    (root / "studies/1/c").symlink_to(root / "studies/1/b")
    assert list(store.stat_children("studies/1", "a")) == ["b"]
    assert store.stat_children("studies/2", "a") == {}


def test_a_file_found_once_is_known_by_its_identity(tmp_path: Path) -> None:
    """The link check is made once per file: later opens of the same untouched file
    (device, inode, status change time) skip it, any other file is checked again."""
    root = tmp_path / "archive"
    store = DirectoryStore(root)
    store.write("studies/1/series/a", b"kept")
    store.write("studies/1/series/b", b"other")
    assert store.locate("studies/1/series/a").read() == b"kept"  # checked, then known
    # Its folder moved out of the archive, a link in its place: the file known is
    # still the one this path held (moved folders leave their files untouched)...
    outside = tmp_path / "outside"
    (root / "studies/1/series").rename(outside)
    (root / "studies/1/series").symlink_to(outside, target_is_directory=True)
    assert store.read("studies/1/series/a") == b"kept"
    # ...but no other file is read through the link: one never opened here,
    with pytest.raises(ResourceNotFoundError, match="symbolic link"):
        store.read("studies/1/series/b")
    # nor another file in the known one's place (another inode),
    (outside / "new").write_bytes(b"secret")
    os.replace(outside / "new", outside / "a")
    with pytest.raises(ResourceNotFoundError, match="symbolic link"):
        store.locate("studies/1/series/a")
    # nor a file that was never below the root.
    (root / "studies/1/series").unlink()
    (root / "studies/1/series").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "a").write_bytes(b"secret")
    with pytest.raises(ResourceNotFoundError, match="symbolic link"):
        store.read("studies/1/series/a")


def test_an_archive_reached_through_a_link_is_read(tmp_path: Path) -> None:
    """Only links below the root are refused: the root itself may be one."""
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    store = DirectoryStore(tmp_path / "alias")
    store.write("studies/1/a", b"kept")
    assert store.read("studies/1/a") == b"kept"
    assert store.stat("studies/1/a").size == 4
    assert store.locate("studies/1/a").length == 4


def test_an_unpublished_write_goes_straight_to_its_file(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    store.write_unpublished(".dwa/staging/x~frames~1", b"ab", b"cd")
    assert (tmp_path / ".dwa/staging/x~frames~1").read_bytes() == b"abcd"
    store.write_unpublished(".dwa/staging/x~frames~1", b"e")  # replaced whole
    assert (tmp_path / ".dwa/staging/x~frames~1").read_bytes() == b"e"
    assert not (tmp_path / paths.WORK_DIR / "tmp").exists()  # no temporary file


def test_unpublished_writes_may_share_one_file(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    (tmp_path / "other").write_bytes(b"kept")
    os.makedirs(tmp_path / "entries")
    os.link(tmp_path / "other", tmp_path / "entries/b")  # a file there is replaced
    for name in ("a", "b"):
        store.write_unpublished(f"entries/{name}", b"x/", b"y", shared="shared/x/y")
    assert (tmp_path / "shared/x/y").read_bytes() == b"x/y"  # written when missing
    shared = os.stat(tmp_path / "shared/x/y")
    assert shared.st_nlink == 3
    for name in ("a", "b"):
        assert os.stat(tmp_path / f"entries/{name}").st_ino == shared.st_ino
    assert (tmp_path / "other").read_bytes() == b"kept"
    # Its shared file removed, the next write makes it again; the entries keep their bytes.
    store.remove("shared/x/y")
    store.write_unpublished("entries/c", b"x/y", shared="shared/x/y")
    assert os.stat(tmp_path / "shared/x/y").st_nlink == 2
    assert store.read("entries/a") == store.read("entries/c") == b"x/y"


def test_an_unpublished_write_without_hard_links_writes_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DirectoryStore(tmp_path)

    def refused(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EMLINK, "too many links")

    monkeypatch.setattr(os, "link", refused)
    store.write_unpublished("entries/a", b"x/y", shared="shared/x/y")
    assert (tmp_path / "entries/a").read_bytes() == b"x/y"
    assert os.stat(tmp_path / "entries/a").st_nlink == 1


def test_a_failed_unpublished_write_leaves_no_file(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    with pytest.raises(TypeError):  # the second part cannot be written
        store.write_unpublished("staged", b"a", 5)  # type: ignore[arg-type]
    assert not (tmp_path / "staged").exists()


def test_exists_answers_files_folders_and_nothing_else(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    store.write("studies/1.2/file", b"x")
    assert store.exists("studies/1.2/file") and store.exists("studies/1.2")
    assert not store.exists("studies/1.3")
    assert not store.exists("studies/1.2/file/below")
    assert not store.exists("studies/1\x002")  # no such name can exist


def test_a_folder_removed_while_made_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed writer removes the empty folders above its instance: another
    writer making its own folders there meanwhile makes them again."""
    store = DirectoryStore(tmp_path / "a")
    real_mkdir = os.mkdir
    removed = 0

    def mkdir_raced(path: str, mode: int = 0o777) -> None:
        nonlocal removed
        real_mkdir(path, mode)
        if removed < 3 and os.path.basename(path) in ("s", "1", "2"):
            removed += 1  # gone before the folder below it is made
            os.rmdir(path)

    monkeypatch.setattr(os, "mkdir", mkdir_raced)
    store.write_unpublished("s/1/frames/1", b"frame")
    store.write("s/2/metadata.gz", b"document")
    assert removed == 3
    assert store.read("s/1/frames/1") == b"frame"
    assert store.read("s/2/metadata.gz") == b"document"
