"""Named locks of a folder store: bytes of one file, by open file description."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from dicomweb_archive.store.locking import FolderLocks


def _waits(locks: FolderLocks, name: str, *, shared: bool = False) -> bool:
    """Whether taking ``name`` from another thread waits (while the caller holds locks)."""
    taken = threading.Event()

    def take() -> None:
        with locks.lock(name, shared=shared):
            taken.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    waited = not taken.wait(0.3)
    return waited


@pytest.mark.parametrize("ranges", [True, False])
def test_a_name_excludes_itself_only(tmp_path: Path, ranges: bool) -> None:
    locks = FolderLocks(tmp_path / "locks", ranges=ranges)
    with locks.lock("study-1.2.3"):
        assert _waits(locks, "study-1.2.3")
        assert _waits(locks, "study-1.2.3", shared=True)
        assert not _waits(locks, "study-1.2.4")
        assert not _waits(locks, "refresh-1.2.3")
    with locks.lock("study-1.2.3", shared=True):
        assert not _waits(locks, "study-1.2.3", shared=True)
        assert _waits(locks, "study-1.2.3")


def test_one_file_for_every_name(tmp_path: Path) -> None:
    locks = FolderLocks(tmp_path / "locks")
    for number in range(100):
        with locks.lock(f"study-1.{number}"), locks.lock(f"refresh-1.{number}"):
            pass
    assert [path.name for path in (tmp_path / "locks").iterdir()] == ["names"]


def test_the_fallback_is_a_file_per_name(tmp_path: Path) -> None:
    locks = FolderLocks(tmp_path / "locks", ranges=False)
    with locks.lock("a"), locks.lock("b", shared=True):
        pass
    assert sorted(path.name for path in (tmp_path / "locks").iterdir()) == ["a.lock", "b.lock"]


def test_a_killed_holder_releases_its_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from dicomweb_archive.store.locking import FolderLocks\n"
            f"with FolderLocks(Path({str(tmp_path / 'locks')!r})).lock('study-1'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        locks = FolderLocks(tmp_path / "locks")
        assert _waits(locks, "study-1")
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert not _waits(locks, "study-1")
    finally:
        holder.kill()
        holder.wait()
