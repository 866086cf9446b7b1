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
    for mark, folder, token in (
        (journal.mark_unlisted, UNLISTED, journal.token),
        (journal.mark_stale, STALE, journal.stale_token),
    ):
        mark(study)
        marker = tmp_path / "archive" / folder / study
        first, inode = token(study), marker.stat().st_ino
        mark(study)
        assert token(study) not in (None, first)
        assert marker.stat().st_ino == inode
        assert not list((tmp_path / "archive" / ".dwa" / "tmp").iterdir())


def test_a_marker_of_another_size_is_replaced_whole(tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive")
    journal = Journal(archive)
    study = generate_uid()
    archive.store.write(f"{UNLISTED}/{study}", b"an older, longer token")
    journal.mark_unlisted(study)
    token = journal.token(study)
    assert token is not None and len(token) == 16
    journal.clear_unlisted(study, token)
    assert journal.unlisted() == []
