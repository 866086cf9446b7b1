"""Unlisted marks as rows of a small SQLite database."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.unlisted import EVERY_STUDY, UNLISTED_PATH, UnlistedRows
from dicomweb_archive.types import JSONDataset


def test_a_mark_is_forgotten_only_with_its_token(tmp_path: Path) -> None:
    rows = UnlistedRows(tmp_path / "work" / "unlisted.sqlite")
    assert rows.studies() == [] and rows.token("1.2") is None
    rows.mark("1.2", b"a" * 16)
    rows.mark("1.2", b"b" * 16)
    rows.forget("1.2", b"a" * 16)  # read before the second mark: kept
    assert rows.studies() == ["1.2"] and rows.token("1.2") == b"b" * 16
    rows.forget("1.2", b"b" * 16)
    assert rows.studies() == []


def test_marks_outlive_their_connection_and_make_no_file_each(tmp_path: Path) -> None:
    local = tmp_path / "unlisted.sqlite"
    rows = UnlistedRows(local)
    rows.mark("1.1", b"x" * 16)
    files = sorted(tmp_path.iterdir())
    inodes = [path.stat().st_ino for path in files]
    for number in range(2, 50):
        rows.mark(f"1.{number}", b"x" * 16)
        rows.forget(f"1.{number - 1}", b"x" * 16)
    assert sorted(tmp_path.iterdir()) == files
    assert [path.stat().st_ino for path in files] == inodes
    del rows
    assert UnlistedRows(local).studies() == ["1.49"]


def test_threads_share_one_connection(tmp_path: Path) -> None:
    rows = UnlistedRows(tmp_path / "unlisted.sqlite")

    def mark(first: int) -> None:
        for number in range(first, first + 50):
            rows.mark(f"1.{number}", b"t" * 16)

    threads = [threading.Thread(target=mark, args=(start,)) for start in (0, 100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(rows.studies()) == 150


def _garbage(path: Path, start: int = 0) -> None:
    """Overwrite ``path`` from ``start`` on, in place (the same file, as a
    power failure or lost blocks leave it)."""
    size = path.stat().st_size
    with open(path, "r+b") as file:
        file.seek(start)
        file.write(b"\xa5" * (size - start))


def test_a_file_that_is_no_database_is_made_anew_marking_every_study(tmp_path: Path) -> None:
    local = tmp_path / "unlisted.sqlite"
    local.write_bytes(b"left so by a power failure" * 100)
    rows = UnlistedRows(local)
    rows.mark("1.2", b"a" * 16)
    assert sorted(rows.studies()) == sorted([EVERY_STUDY, "1.2"])
    assert UnlistedRows(local).token(EVERY_STUDY) is not None


def test_a_file_damaged_inside_is_made_anew_marking_every_study(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    local = tmp_path / "unlisted.sqlite"
    rows = UnlistedRows(local)
    for number in range(400):
        rows.mark(f"1.{number}", b"m" * 16)
    del rows
    assert local.stat().st_size > 8 * 1024
    _garbage(local, 4096)  # the pages past the first four
    rows = UnlistedRows(local)
    rows.mark("1.999", b"n" * 16)
    assert sorted(rows.studies()) == sorted([EVERY_STUDY, "1.999"])
    assert f"{local}: damaged" in caplog.text


def test_a_file_found_damaged_in_use_is_made_anew_and_followed_by_other_users(
    tmp_path: Path,
) -> None:
    local = tmp_path / "unlisted.sqlite"
    rows, other = UnlistedRows(local), UnlistedRows(local)
    for number in range(400):
        rows.mark(f"1.{number}", b"m" * 16)
    assert len(other.studies()) == 400
    _garbage(local)  # under both connections (pages they hold are read again)
    assert rows.token("1.5") is None  # lost with the file
    assert sorted(rows.studies()) == [EVERY_STUDY]
    other.mark("1.7", b"o" * 16)  # on the file made anew, not the removed one
    assert sorted(rows.studies()) == sorted([EVERY_STUDY, "1.7"])


def test_every_study_is_listed_afresh_after_marks_were_lost(tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive")
    catalog = Catalog(archive)
    rows = {study: _row(study, "20000101") for study in ("1.1", "1.2")}
    for study, row in rows.items():
        archive.store.write_json_gz(paths.study_row(study), [row])
    catalog.studies_moved(list(rows))
    # A study's row changes and is marked; the mark is lost with its damaged file.
    changed = _row("1.1", "20240202")
    archive.store.write_json_gz(paths.study_row("1.1"), [changed])
    catalog.journal.mark_unlisted("1.1")
    local = archive.store.local_path(UNLISTED_PATH)
    assert local is not None
    local.write_bytes(b"left so by a power failure" * 100)
    assert catalog.journal.unlisted() == []
    assert catalog.journal.relisting() is not None
    catalog.flush()
    listed = archive.read_json_gz(paths.STUDIES_INDEX)
    assert listed == [rows["1.2"], changed]
    assert catalog.journal.relisting() is None


def _row(study: str, date: str) -> JSONDataset:
    return {
        "00080020": {"vr": "DA", "Value": [date]},
        "0020000D": {"vr": "UI", "Value": [study]},
    }
