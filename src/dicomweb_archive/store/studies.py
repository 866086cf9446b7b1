"""The studies of an archive: each one a folder or a packed ZIP, and their list.

A study lives either in the folder ``studies/{study}/`` or, packed, in the file
``studies/{study}.zip`` whose entries carry the same paths.  When both exist
(a pack or an unpack was interrupted, or the folder was kept), the ZIP is the
study.  The archive-level QIDO list ``studies/index.json.gz`` holds every study
either way.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, Protocol

from dicomweb_archive import tags, uids
from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.model.aggregate import study_sort_key
from dicomweb_archive.store.directory import Archive
from dicomweb_archive.store.studyzip import StudyZip
from dicomweb_archive.types import JSONDataset, first_value


class StudyFiles(Protocol):
    """Read access to a study's files by archive path (a folder or a ZIP)."""

    def exists(self, relative: str) -> bool: ...

    def read(self, relative: str) -> bytes: ...

    def read_json_gz(self, relative: str) -> Any: ...


def study_lock(study: str) -> str:
    """The name of the lock that guards one study's files."""
    return f"study-{study}"


def is_packed(archive: Archive, study: str) -> bool:
    return archive.path(paths.study_zip(study)).is_file()


def study_uids(archive: Archive) -> list[str]:
    """Every study of the archive, packed or not, sorted."""
    try:
        entries = list(os.scandir(archive.path("studies")))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = set()
    for entry in entries:
        if entry.is_dir():
            found.add(entry.name)
        elif entry.name.endswith(".zip") and entry.is_file():
            found.add(entry.name[: -len(".zip")])
    # Anything else put there (a copy, a download) is not a study.
    return sorted(uid for uid in found if uids.is_valid_uid(uid))


@contextlib.contextmanager
def open_study(archive: Archive, study: str) -> Iterator[StudyFiles]:
    """The files of one study, from its ZIP when packed, else from its folder."""
    try:
        packed: StudyZip | None = StudyZip(archive.path(paths.study_zip(study)), study=study)
    except ResourceNotFoundError:
        packed = None
    if packed is not None:
        with packed:
            yield packed
        return
    if not archive.path(paths.study_dir(study)).is_dir():
        raise ResourceNotFoundError(f"study {study} is not in the archive")
    yield archive


def read_study_row(archive: Archive, study: str) -> JSONDataset | None:
    """The study's own QIDO row, or None when it has none (yet)."""
    try:
        with open_study(archive, study) as files:
            if not files.exists(paths.study_row(study)):
                return None
            row: JSONDataset = files.read_json_gz(paths.study_row(study))[0]
            return row
    except ResourceNotFoundError:
        return None


def update_studies_index(archive: Archive, rows: dict[str, JSONDataset | None]) -> None:
    """Put the given study rows into ``studies`` (``None`` removes a study)."""
    with archive.lock("studies-index"):
        current: dict[str, JSONDataset] = {}
        if archive.exists(paths.STUDIES_INDEX):
            for row in archive.read_json_gz(paths.STUDIES_INDEX):
                uid = first_value(row, tags.StudyInstanceUID)
                if uid:
                    current[uid] = row
        else:
            # First index, or one lost: rebuild from every study's own row.
            for study in study_uids(archive):
                found = read_study_row(archive, study)
                if found is not None:
                    current[study] = found
        for study, row in rows.items():
            if row is None:
                current.pop(study, None)
            else:
                current[study] = row
        ordered = sorted(current.values(), key=study_sort_key)
        archive.write_json_gz(paths.STUDIES_INDEX, ordered)
