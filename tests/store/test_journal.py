"""The catalog's journal: stale and unlisted markers, per study."""

from __future__ import annotations

from pathlib import Path

from pydicom.uid import generate_uid

from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.journal import STALE, UNLISTED, Journal
from dicomweb_archive.store.memory import MemoryStore


def test_markers_come_and_go() -> None:
    journal = Journal(Archive(MemoryStore()))
    first, second = sorted([generate_uid(), generate_uid()])
    assert journal.stale() == journal.unlisted() == []
    journal.mark_stale(second)
    journal.mark_stale(first)
    journal.mark_stale(first)
    assert journal.stale() == [first, second]
    assert journal.is_stale(first)
    stale = journal.stale_token(first)
    journal.mark_stale(first)  # an instance stored after the token was read
    journal.clear_stale(first, stale)
    assert journal.is_stale(first)
    journal.clear_stale(first, journal.stale_token(first))
    assert not journal.is_stale(first)
    journal.mark_unlisted(first)
    token = journal.token(first)
    assert token
    journal.clear_unlisted(first, None)
    assert journal.unlisted() == [first]
    journal.clear_unlisted(first, token)
    assert journal.unlisted() == []
    assert journal.token(first) is None


def test_other_files_are_not_studies() -> None:
    archive = Archive(MemoryStore())
    archive.store.write(f"{STALE}/notes.txt", b"")
    assert Journal(archive).stale() == []


def test_a_marker_written_again_keeps_its_file(tmp_path: Path) -> None:
    """A new token is written over the old one: no file made, none freed."""
    archive = open_archive(tmp_path / "archive")
    journal = Journal(archive)
    study = generate_uid()
    journal.mark_stale(study)
    marker = tmp_path / "archive" / STALE / study
    first, inode = journal.stale_token(study), marker.stat().st_ino
    journal.mark_stale(study)
    assert journal.stale_token(study) not in (None, first)
    assert marker.stat().st_ino == inode
    assert not list((tmp_path / "archive" / ".dwa" / "tmp").iterdir())


def test_a_marker_of_another_size_is_replaced_whole(tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive")
    journal = Journal(archive)
    study = generate_uid()
    archive.store.write(f"{STALE}/{study}", b"an older, longer token")
    journal.mark_stale(study)
    token = journal.stale_token(study)
    assert token is not None and len(token) == 16
    journal.clear_stale(study, token)
    assert journal.stale() == []


def test_unlisted_marks_of_a_local_store_are_rows_not_files(tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive")
    journal = Journal(archive)
    first, second = sorted([generate_uid(), generate_uid()])
    journal.mark_unlisted(second)
    journal.mark_unlisted(first)
    assert journal.unlisted() == [first, second]
    assert not (tmp_path / "archive" / UNLISTED).exists()
    token = journal.token(first)
    journal.mark_unlisted(first)  # a refresh after the token was read
    journal.clear_unlisted(first, token)
    assert journal.unlisted() == [first, second]
    journal.clear_unlisted(first, journal.token(first))
    # Another process (a new journal) sees the same marks.
    assert Journal(archive).unlisted() == [second]
    assert journal.token(first) is None


def test_unlisted_files_of_an_earlier_version_are_read_and_cleared(tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive")
    journal = Journal(archive)
    old, both = sorted([generate_uid(), generate_uid()])
    archive.store.write(f"{UNLISTED}/{old}", b"0123456789abcdef")
    archive.store.write(f"{UNLISTED}/{both}", b"fedcba9876543210")
    journal.mark_unlisted(both)
    assert journal.unlisted() == [old, both]
    tokens = {study: journal.token(study) for study in (old, both)}
    archive.store.write(f"{UNLISTED}/{old}", b"0000000000000000")  # marked again meanwhile
    for study, token in tokens.items():
        journal.clear_unlisted(study, token)
    assert journal.unlisted() == [old]
    journal.clear_unlisted(old, journal.token(old))
    assert journal.unlisted() == []
