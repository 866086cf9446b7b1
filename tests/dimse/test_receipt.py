"""Received data sets in files: written as they come, never left behind."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dicomweb_archive.demo.samples import write_multiframe
from dicomweb_archive.dimse.receipt import FOLDER_PREFIX, Receipt, Receipts
from tests.dimse.live import AE_TITLE, Listening, dwa_listen

HEAD = b"\x00" * 128 + b"DICM"


def test_a_receipt_holds_what_it_was_sent(tmp_path: Path) -> None:
    receipt = Receipt(tmp_path / "1.dcm", HEAD, None)
    for fragment in (b"ab", b"", b"cdef"):
        receipt.write(fragment)
        receipt.file.flush()
    receipt.close()
    assert receipt.kept and receipt.size == 6
    assert (tmp_path / "1.dcm").read_bytes() == HEAD + b"abcdef"
    receipt.discard()
    receipt.discard()
    assert not (tmp_path / "1.dcm").exists()


def test_a_data_set_past_the_limit_is_dropped_at_once(tmp_path: Path) -> None:
    receipt = Receipt(tmp_path / "1.dcm", HEAD, 10)
    receipt.write(b"x" * 10)
    assert receipt.kept and (tmp_path / "1.dcm").stat().st_size == len(HEAD) + 10
    receipt.write(b"y")
    assert receipt.too_large and not receipt.kept
    assert not (tmp_path / "1.dcm").exists()
    receipt.write(b"z" * 100)  # the rest is read and dropped
    assert receipt.size == 111 and receipt.error is None


def test_a_full_disk_frees_the_file_and_keeps_the_error(
    small_filesystem: Callable[[int], Path],
) -> None:
    folder = small_filesystem(256 * 1024)
    receipt = Receipt(folder / "1.dcm", HEAD, None)
    for _ in range(8):
        receipt.write(b"x" * 64 * 1024)
    assert receipt.error is not None and receipt.error.errno == errno.ENOSPC
    assert not receipt.kept and receipt.size == 8 * 64 * 1024
    assert list(folder.iterdir()) == []


def test_receipts_are_held_for_their_association_until_taken(tmp_path: Path) -> None:
    receipts = Receipts(tmp_path)
    first, second, other = object(), object(), object()
    a = receipts.open(first, HEAD)
    b = receipts.open(first, HEAD)
    c = receipts.open(other, HEAD)
    assert receipts.take(a.path) is a and receipts.take(a.path) is None
    assert receipts.discard(first) == 1  # b; a was taken: its handler discards it
    assert not b.path.exists() and a.path.exists() and c.path.exists()
    assert receipts.discard(second) == 0
    a.discard()
    assert receipts.held() == [c.path]
    receipts.close()
    receipts.close()
    assert not c.path.exists() and not receipts.folder.exists()


_HOLDER = """
import sys, time
from pathlib import Path
from dicomweb_archive.dimse.receipt import Receipts
receipts = Receipts(Path(sys.argv[1]))
receipts.open(None, b"held")
print(receipts.folder, flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Callable[[], tuple[subprocess.Popen[str], Path]]]:
    """Processes holding a folder of receipts in ``tmp_path``, as a running listener does."""
    started: list[subprocess.Popen[str]] = []

    def start() -> tuple[subprocess.Popen[str], Path]:
        process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        started.append(process)
        assert process.stdout is not None
        return process, Path(process.stdout.readline().strip())

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_killed_holders_folder_goes_a_running_ones_stays(
    tmp_path: Path, holder: Callable[[], tuple[subprocess.Popen[str], Path]]
) -> None:
    running, kept = holder()
    killed, stale = holder()
    killed.kill()
    killed.wait()
    assert [p.name for p in stale.iterdir()] == ["1.dcm"]
    unlocked = tmp_path / f"{FOLDER_PREFIX}never-locked"  # made by hand, or half made
    unlocked.mkdir()
    receipts = Receipts(tmp_path)
    assert not stale.exists() and not unlocked.exists()
    assert [p.name for p in kept.iterdir()] == ["1.dcm"]
    assert sorted(tmp_path.glob(f"{FOLDER_PREFIX}*")) == sorted([kept, receipts.folder])
    receipts.close()
    assert running.poll() is None


# -- with DCMTK's storescu and a real dwa listen ------------------------------------


def _folders(archive: Path) -> list[Path]:
    return sorted((archive / ".dwa" / "tmp").glob(f"{FOLDER_PREFIX}*"))


def _files(archive: Path) -> list[Path]:
    return [path for folder in _folders(archive) for path in folder.iterdir()]


def _sending(listening: Listening, source: Path) -> subprocess.Popen[bytes]:
    """``storescu`` of ``source``, stopped (SIGSTOP) once the listener receives it into a
    file: an association frozen mid-transfer."""
    sender = subprocess.Popen(
        ["storescu", "--max-send-pdu", "4096", "-aec", AE_TITLE, "127.0.0.1",
         str(listening.port), str(source)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not any(path.stat().st_size > 1 << 20 for path in _files(listening.archive)):
        assert sender.poll() is None, "storescu ended before it was stopped"
        assert time.monotonic() < deadline, "nothing received into a file"
        time.sleep(0.001)
    sender.send_signal(signal.SIGSTOP)
    [path] = _files(listening.archive)
    assert path.stat().st_size < source.stat().st_size  # mid-transfer
    return sender


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24 MB multi-frame instance."""
    return write_multiframe(tmp_path_factory.mktemp("large") / "mf.dcm", frames=48)


@pytest.mark.integration
def test_storescu_killed_mid_transfer_leaves_no_file(tmp_path: Path, large: Path) -> None:
    with dwa_listen(tmp_path / "archive") as listening:
        sender = _sending(listening, large)
        sender.kill()
        sender.wait()
        listening.wait_for_log("aborted after")
        deadline = time.monotonic() + 10
        while _files(listening.archive):
            assert time.monotonic() < deadline, f"left behind: {_files(listening.archive)}"
            time.sleep(0.05)
        assert len(_folders(listening.archive)) == 1  # its own, empty
    assert _folders(tmp_path / "archive") == []  # gone when it stopped


@pytest.mark.integration
def test_a_killed_listener_s_files_go_when_the_next_one_starts(tmp_path: Path, large: Path) -> None:
    archive = tmp_path / "archive"
    with dwa_listen(archive, log=tmp_path / "running.log") as running:
        [kept] = _folders(archive)
        with dwa_listen(archive, log=tmp_path / "killed.log") as killed:
            sender = _sending(killed, large)
            killed.process.kill()
            killed.process.wait()
            sender.kill()
            sender.wait()
        [stale] = [folder for folder in _folders(archive) if folder != kept]
        assert [path.name for path in stale.iterdir()] == ["1.dcm"]
        with dwa_listen(archive, log=tmp_path / "next.log") as following:
            assert not stale.exists() and kept.exists()
            assert f"removed {stale}: 1 data sets" in following.log_text()
            done = subprocess.run(
                ["storescu", "-aec", AE_TITLE, "127.0.0.1", str(following.port), str(large)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            following.wait_for_log("1 stored")
            assert _files(archive) == []
        assert running.process.poll() is None
    assert _folders(archive) == []
    assert os.listdir(archive / "studies")
