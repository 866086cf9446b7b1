"""The catalog's journal: stale and unlisted markers, per study."""

from __future__ import annotations

from pydicom.uid import generate_uid

from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.journal import STALE, Journal
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
