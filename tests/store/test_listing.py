"""The study list: index.json.gz of the newest studies, pages rewritten only where they change."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dicomweb_archive.errors import DamagedDatabaseError
from dicomweb_archive.model import paths
from dicomweb_archive.model.aggregate import study_sort_key
from dicomweb_archive.store import listing
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.base import dumps_json, gzip_bytes
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.listing import LISTING_PATH, StudyList
from dicomweb_archive.store.memory import MemoryStore
from dicomweb_archive.types import JSONDataset


def _row(study: str, date: str) -> JSONDataset:
    return {
        "00080020": {"vr": "DA", "Value": [date]},
        "00100020": {"vr": "LO", "Value": [f"P{study}"]},
        "0020000D": {"vr": "UI", "Value": [study]},
    }


def _store(archive: Archive, *rows: JSONDataset) -> list[str]:
    """Studies as a moved study arrives: its own row there; returns their UIDs."""
    studies = []
    for row in rows:
        study = str(row["0020000D"]["Value"][0])
        archive.store.write_json_gz(paths.study_row(study), [row])
        studies.append(study)
    return studies


def _one_study_listed(archive: Archive) -> tuple[Catalog, Path]:
    """A catalog that listed study 1.1, and where its record is."""
    catalog = Catalog(archive)
    catalog.studies_moved(_store(archive, _row("1.1", "20000101")))
    local = archive.store.local_path(LISTING_PATH)
    assert local is not None
    return catalog, local


def _listed(archive: Archive, path: str) -> list[str]:
    return [str(row["0020000D"]["Value"][0]) for row in archive.read_json_gz(path)]


def _pages(archive: Archive) -> dict[str, bytes]:
    root = archive.store.local_path(paths.STUDY_LIST_PAGES)
    assert root is not None
    return {p.name: p.read_bytes() for p in sorted(root.glob("*"))} if root.exists() else {}


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    return open_archive(tmp_path / "archive")


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(listing, "PAGE_SIZE", 3)
    return 3


def test_up_to_a_page_of_studies_index_json_is_the_whole_list_and_there_are_no_pages(
    archive: Archive,
) -> None:
    rows = [_row("1.2.3", "20200101"), _row("1.2.1", "20190101"), _row("1.2.2", "20200101")]
    Catalog(archive).studies_moved(_store(archive, *rows))
    expected = gzip_bytes(dumps_json(sorted(rows, key=study_sort_key)))
    assert archive.read(paths.STUDIES_INDEX) == expected
    assert not archive.exists(paths.study_list_page(0))
    # Delisted: the row is gone from the list.
    archive.store.remove(paths.study_row("1.2.2"))
    Catalog(archive).studies_moved(["1.2.2"])
    assert _listed(archive, paths.STUDIES_INDEX) == ["1.2.1", "1.2.3"]


def test_a_larger_list_is_paged_in_the_order_studies_were_first_listed(
    archive: Archive, small_pages: int
) -> None:
    catalog = Catalog(archive)
    # One flush lists its new studies in study order: 1.1 (2001) … 1.5 (2005).
    first = [_row(f"1.{n}", f"200{n}0101") for n in (5, 3, 1, 4, 2)]
    catalog.studies_moved(_store(archive, *first))
    assert _listed(archive, paths.study_list_page(0)) == ["1.1", "1.2", "1.3"]
    assert _listed(archive, paths.study_list_page(1)) == ["1.4", "1.5"]
    assert _listed(archive, paths.STUDIES_INDEX) == ["1.3", "1.4", "1.5"]
    assert _listed(archive, paths.STUDIES_INDEX) == ["1.3", "1.4", "1.5"]  # newest 3 slots
    # A later, older study goes to the end: slot 5 (page 1); 1.0 is newest listed.
    before = _pages(archive)
    catalog.studies_moved(_store(archive, _row("1.0", "19990101")))
    assert _listed(archive, paths.study_list_page(1)) == ["1.0", "1.4", "1.5"]
    assert _listed(archive, paths.STUDIES_INDEX) == ["1.0", "1.4", "1.5"]
    assert _pages(archive)["0.json.gz"] == before["0.json.gz"]
    # The next one opens page 2; a changed row rewrites its own page only.
    catalog.studies_moved(_store(archive, _row("1.6", "20060101"), _row("1.2", "20220202")))
    assert _listed(archive, paths.study_list_page(2)) == ["1.6"]
    assert _listed(archive, paths.study_list_page(0)) == ["1.1", "1.3", "1.2"]
    assert _listed(archive, paths.STUDIES_INDEX) == ["1.0", "1.5", "1.6"]
    # A deleted study leaves its page; a page without studies is an empty list.
    for study in ("1.6", "1.1"):
        archive.store.remove(paths.study_row(study))
    catalog.studies_moved(["1.6", "1.1"])
    assert _listed(archive, paths.study_list_page(2)) == []
    assert _listed(archive, paths.study_list_page(0)) == ["1.3", "1.2"]
    assert _listed(archive, paths.STUDIES_INDEX) == ["1.0", "1.4", "1.5"]


def test_a_flush_reads_only_the_rows_it_lists(
    archive: Archive, small_pages: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = Catalog(archive)
    catalog.studies_moved(_store(archive, *[_row(f"1.{n}", "20000101") for n in range(1, 20)]))
    read: list[str] = []
    study_row = catalog.study_row
    monkeypatch.setattr(catalog, "study_row", lambda study: read.append(study) or study_row(study))
    written: list[str] = []
    write = archive.store.write
    monkeypatch.setattr(
        archive.store, "write", lambda path, data: written.append(path) or write(path, data)
    )
    catalog.studies_moved(_store(archive, _row("1.20", "20000101")))
    assert read == ["1.20"]
    listed = [path for path in written if path.startswith(paths.STUDY_LIST_PAGES)]
    assert listed + [p for p in written if p == paths.STUDIES_INDEX] == [
        paths.study_list_page(6),
        paths.STUDIES_INDEX,
    ]


def test_a_lost_record_is_taken_from_the_pages_and_dwa_index_renumbers_them(
    archive: Archive, small_pages: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = Catalog(archive)
    for n in range(7, 0, -1):  # one flush each: listed newest date first
        catalog.studies_moved(_store(archive, _row(f"1.{n}", f"200{n}0101")))
    assert _listed(archive, paths.study_list_page(0)) == ["1.5", "1.6", "1.7"]
    local = archive.store.local_path(LISTING_PATH)
    assert local is not None
    local.unlink()
    published = _pages(archive)
    catalog.studies_moved(_store(archive, _row("1.8", "20080101")))
    assert _listed(archive, paths.study_list_page(2)) == ["1.1", "1.8"]
    assert _pages(archive)["0.json.gz"] == published["0.json.gz"]
    assert catalog.rebuild_study_list() == 8  # dwa index: in study order
    assert _listed(archive, paths.study_list_page(0)) == ["1.1", "1.2", "1.3"]
    assert _listed(archive, paths.study_list_page(2)) == ["1.7", "1.8"]
    # Pages fuller than the page size now: rebuilt from the studies' rows.
    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    catalog.studies_moved([])
    assert list(_pages(archive)) == ["0.json.gz", "1.json.gz", "2.json.gz", "3.json.gz"]
    assert _listed(archive, paths.STUDIES_INDEX) == ["1.7", "1.8"]
    # Few enough for index.json.gz alone: the rebuild drops the pages.
    monkeypatch.setattr(listing, "PAGE_SIZE", 1000)
    assert catalog.rebuild_study_list() == 8
    assert _pages(archive) == {}
    assert len(_listed(archive, paths.STUDIES_INDEX)) == 8


def test_a_merge_keeps_what_others_published(archive: Archive, small_pages: int) -> None:
    catalog = Catalog(archive)
    catalog.studies_moved(_store(archive, *[_row(f"1.{n}", "20000101") for n in range(1, 5)]))
    local = archive.store.local_path(LISTING_PATH)
    assert local is not None
    with sqlite3.connect(local) as db:  # as if another machine had listed 1.4
        db.execute("DELETE FROM listed WHERE study = '1.4'")
    catalog.studies_moved(_store(archive, _row("1.5", "20000101")), merge=True)
    assert _listed(archive, paths.study_list_page(0)) == ["1.1", "1.2", "1.3"]
    assert _listed(archive, paths.study_list_page(1)) == ["1.4", "1.5"]
    assert _listed(archive, paths.STUDIES_INDEX) == ["1.3", "1.4", "1.5"]


def test_a_lost_page_or_list_is_written_again(archive: Archive, small_pages: int) -> None:
    catalog = Catalog(archive)
    studies = _store(archive, *[_row(f"1.{n}", "20000101") for n in range(1, 8)])
    catalog.studies_moved(studies)
    before = _pages(archive), archive.read(paths.STUDIES_INDEX)
    archive.store.remove(paths.study_list_page(1))
    archive.store.remove(paths.STUDIES_INDEX)
    catalog.studies_moved(studies[3:4])  # as a refresh of a study of that page does
    assert (_pages(archive), archive.read(paths.STUDIES_INDEX)) == before


def test_a_store_without_local_files_lists_from_every_row() -> None:
    archive = Archive(MemoryStore())
    archive.store.write_json_gz(paths.study_row("1.2"), [_row("1.2", "20000101")])
    archive.store.write(f"{paths.study_dir('1.2')}/series/x", b"")  # the study's folder
    Catalog(archive).studies_moved(["1.2"])
    assert _listed(archive, paths.STUDIES_INDEX) == ["1.2"]
    with StudyList(archive) as fresh:
        assert not fresh.complete


def test_unchanged_rows_change_not_a_byte_of_the_record(archive: Archive, small_pages: int) -> None:
    """A rerun lists its studies again: the record stays as it was (its file
    too: a rerun of a conversion ends with the same .dwa), the pages are rewritten."""
    catalog = Catalog(archive)
    studies = _store(archive, *[_row(f"1.{n}", "20000101") for n in range(1, 6)])
    catalog.studies_moved(studies)
    local = archive.store.local_path(LISTING_PATH)
    assert local is not None
    record, page = local.read_bytes(), archive.read(paths.study_list_page(1))
    archive.store.remove(paths.study_list_page(1))
    catalog.studies_moved(studies)
    assert local.read_bytes() == record
    assert archive.read(paths.study_list_page(1)) == page


def test_a_flush_makes_and_deletes_no_journal_file(archive: Archive) -> None:
    """SQLite's rollback journal is emptied after each transaction, not deleted:
    each flush would otherwise make a file and free it."""
    catalog, local = _one_study_listed(archive)
    journal = local.with_name(local.name + "-journal")
    inode = journal.stat().st_ino
    catalog.studies_moved(_store(archive, _row("1.2", "20000102")))
    assert journal.stat().st_ino == inode
    assert journal.stat().st_size == 0
    assert _listed(archive, paths.STUDIES_INDEX) == ["1.1", "1.2"]


def test_the_record_is_written_without_syncing(archive: Archive) -> None:
    """Synced, a commit waited for the file system to commit every file the
    run wrote before it (the archive's own files are not synced either)."""
    with StudyList(archive) as listed:
        assert listed._db.execute("PRAGMA synchronous").fetchone() == (0,)


def test_a_record_that_is_no_database_is_made_anew(archive: Archive) -> None:
    catalog, local = _one_study_listed(archive)
    local.write_bytes(b"left so by a power failure" * 100)
    catalog.studies_moved(_store(archive, _row("1.2", "20000102")))
    assert _listed(archive, paths.STUDIES_INDEX) == ["1.1", "1.2"]


def test_a_record_damaged_inside_is_dropped_then_made_anew(
    archive: Archive, small_pages: int
) -> None:
    catalog = Catalog(archive)
    studies = [_row(f"1.{n}", f"2000{n:04d}") for n in range(1, 41)]
    catalog.studies_moved(_store(archive, *studies))
    local = archive.store.local_path(LISTING_PATH)
    assert local is not None
    data = bytearray(local.read_bytes())
    assert len(data) > 4 * 1024
    data[2048:] = b"\xff" * (len(data) - 2048)  # every page but the first two
    local.write_bytes(bytes(data))
    catalog.studies_moved(_store(archive, _row("1.99", "20991231")))
    listed = [s for page in range(14) for s in _listed_page(archive, page)]
    assert sorted(listed) == sorted([f"1.{n}" for n in range(1, 41)] + ["1.99"])
    with StudyList(archive) as record:
        assert record.complete


def _listed_page(archive: Archive, page: int) -> list[str]:
    path = paths.study_list_page(page)
    return _listed(archive, path) if archive.store.exists(path) else []


def _damage_found(times: int) -> Callable[..., int | None]:
    """StudyList._record finding its file damaged the first ``times`` calls."""
    record, found = StudyList._record, [times]

    def damaged(self: StudyList, *args: Any) -> int | None:
        if found[0]:
            found[0] -= 1
            exc = sqlite3.DatabaseError("database disk image is malformed")
            exc.sqlite_errorcode = sqlite3.SQLITE_CORRUPT  # type: ignore[attr-defined]
            raise exc
        return record(self, *args)

    return damaged


def test_a_record_found_damaged_in_use_is_dropped_and_the_update_made_once_more(
    archive: Archive, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    catalog, local = _one_study_listed(archive)
    with monkeypatch.context() as patched:
        patched.setattr(StudyList, "_record", _damage_found(1))
        catalog.studies_moved(_store(archive, _row("1.2", "20000102")))
    assert f"{LISTING_PATH}: damaged (database disk image is malformed)" in caplog.text
    assert _listed(archive, paths.STUDIES_INDEX) == ["1.1", "1.2"]
    with StudyList(archive) as record:  # made anew, holding every study
        assert record.complete
        assert record._db.execute("SELECT count(*) FROM listed").fetchone() == (2,)


def test_a_record_found_damaged_again_is_one_error_naming_it(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, local = _one_study_listed(archive)
    with monkeypatch.context() as patched:
        patched.setattr(StudyList, "_record", _damage_found(2))
        with pytest.raises(DamagedDatabaseError, match=f"^{LISTING_PATH}: damaged"):
            catalog.studies_moved(_store(archive, _row("1.2", "20000102")))
    assert not local.exists()
    catalog.studies_moved([])  # the marks stayed: listed by the next flush
    assert _listed(archive, paths.STUDIES_INDEX) == ["1.1", "1.2"]
