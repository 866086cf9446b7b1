"""Unlisted marks as rows of a small SQLite database."""

from __future__ import annotations

import threading
from pathlib import Path

from dicomweb_archive.store.unlisted import UnlistedRows


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
