"""The archive view: studies as folders or ZIPs, read alike; the ZIP wins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.errors import ResourceNotFoundError, StoreError
from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.base import Store
from dicomweb_archive.store.directory import DirectoryStore
from dicomweb_archive.store.manifest import ArchiveOptions
from dicomweb_archive.store.memory import MemoryStore
from dicomweb_archive.store.packing import pack_study
from dicomweb_archive.store.studyzip import write_study_zip
from dicomweb_archive.types import InstanceKey
from tests.conftest import write_instance

PACKED, LOOSE = "1.2.3", "1.2.4"


def _study(store: Store, study: str, body: bytes) -> None:
    store.write(paths.study_metadata(study), body)
    store.write(f"{paths.study_dir(study)}/series/9/metadata.gz", body * 2)


def _pack(store: Store, study: str) -> None:
    with store.temporary_file() as tmp:
        write_study_zip(store, study, tmp.handle, ArchiveOptions())
        store.commit(tmp, paths.study_zip(study))


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    store = DirectoryStore(tmp_path)
    _study(store, PACKED, b"packed")
    _pack(store, PACKED)
    store.remove_tree(paths.study_dir(PACKED))
    _study(store, LOOSE, b"loose")
    # Not studies: a stray copy and the study list itself.
    store.write("studies/copy of 1.2.3.zip", b"")
    store.write(paths.STUDIES_INDEX, b"")
    return Archive(store)


def test_studies_are_folders_and_zips(archive: Archive) -> None:
    assert archive.study_uids() == [PACKED, LOOSE]
    assert archive.studies() == {PACKED: True, LOOSE: False}
    _study(archive.store, PACKED, b"unpacked meanwhile")  # both: the ZIP is the study
    assert archive.studies() == {PACKED: True, LOOSE: False}
    assert archive.is_packed(PACKED) and not archive.is_packed(LOOSE)
    assert archive.has_study(PACKED) and archive.has_study(LOOSE)
    assert not archive.has_study("1.2.5")


def test_reads_go_to_whichever_holds_the_study(archive: Archive) -> None:
    assert archive.read(paths.study_metadata(PACKED)) == b"packed"
    assert archive.read(paths.study_metadata(LOOSE)) == b"loose"
    located = archive.locate(paths.study_metadata(PACKED))
    assert located.path.name == f"{PACKED}.zip" and located.read() == b"packed"
    assert archive.list(paths.study_dir(PACKED)) == archive.list(paths.study_dir(LOOSE))
    with pytest.raises(ResourceNotFoundError):
        archive.read(f"{paths.study_dir(PACKED)}/nothing")


def test_the_zip_wins_and_a_replaced_zip_is_reopened(archive: Archive) -> None:
    store = archive.store
    _study(store, PACKED, b"folder")  # an interrupted unpack: both exist
    assert archive.read(paths.study_metadata(PACKED)) == b"packed"
    _pack(store, PACKED)  # a new pack replaces the ZIP the archive holds open
    os.utime(store.local_path(paths.study_zip(PACKED)), ns=(1, 1))  # type: ignore[arg-type]
    assert archive.read(paths.study_metadata(PACKED)) == b"folder"
    archive.forget(PACKED)
    assert archive.read(paths.study_metadata(PACKED)) == b"folder"


def test_open_archive_by_location(tmp_path: Path) -> None:
    with open_archive(f"file://{tmp_path}") as archive:
        assert isinstance(archive.store, DirectoryStore)
        assert archive.url == str(tmp_path)
    memory = MemoryStore()
    assert open_archive(memory).store is memory


def test_no_local_files_no_packed_studies() -> None:
    store = MemoryStore()
    _study(store, LOOSE, b"loose")
    store.write(paths.study_zip(PACKED), b"")  # not read there: a study, not packed
    assert Archive(store).studies() == {PACKED: False, LOOSE: False}


def test_no_local_files_no_slices() -> None:
    archive = Archive(MemoryStore())
    _study(archive.store, LOOSE, b"x")
    assert archive.read(paths.study_metadata(LOOSE)) == b"x"
    with pytest.raises(StoreError, match="local file"):
        archive.locate(paths.study_metadata(LOOSE))


def test_instance_keys_of_folders_and_zips(tmp_path: Path) -> None:
    """Every stored instance, a packed study's from its indexes, one study at a time."""
    made = [
        write_instance(tmp_path / "in", study=study, series=series, sop=sop)
        for study, series, sop in (("1.5", "1.5.1", "1.5.1.1"), ("1.6", "1.6.1", "1.6.1.1"))
    ]
    made.append(write_instance(tmp_path / "in", study="1.6", series="1.6.1", sop="1.6.1.2"))
    Converter(tmp_path / "archive", ConvertOptions(workers=1)).convert([str(p) for p in made])
    archive = open_archive(tmp_path / "archive")
    pack_study(archive, "1.6", remove=True)
    assert archive.is_packed("1.6")
    every = [
        InstanceKey("1.5", "1.5.1", "1.5.1.1"),
        InstanceKey("1.6", "1.6.1", "1.6.1.1"),
        InstanceKey("1.6", "1.6.1", "1.6.1.2"),
    ]
    assert sorted(archive.instance_keys()) == every
    assert sorted(archive.instance_keys(["1.6"])) == every[1:]
    assert list(archive.instance_keys([])) == []
