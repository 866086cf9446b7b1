"""Every server test runs over both layouts of an archive: study folders, and
the same studies packed into one ZIP each (the folders removed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomweb_archive.store.directory import Archive
from dicomweb_archive.store.packing import pack_study
from dicomweb_archive.store.reader import ArchiveReader
from dicomweb_archive.store.studies import study_uids


@pytest.fixture(scope="module", params=["folders", "zips"])
def layout(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def arrange(root: Path, layout: str) -> Path:
    """Pack every study of the archive at ``root`` when the layout says so."""
    if layout == "zips":
        archive = Archive(root)
        for study in study_uids(archive):
            pack_study(archive, study, remove=True)
        assert not any(p.is_dir() for p in (root / "studies").iterdir())
    return root


def stored(root: Path, relative: str) -> bytes:
    """The stored bytes of an archive resource, whatever the layout."""
    return ArchiveReader(Archive(root)).read(relative)
