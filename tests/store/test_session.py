"""The study write session: a packed study is unpacked once, writers share the lock."""

from __future__ import annotations

import threading
from pathlib import Path

from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import files_under
from dicomweb_archive.store.directory import DirectoryStore
from dicomweb_archive.store.manifest import ArchiveOptions
from dicomweb_archive.store.session import ensure_unpacked, study_lock, writing_study
from dicomweb_archive.store.studyzip import write_study_zip

STUDY = "1.2.3"
FILES = {
    paths.study_metadata(STUDY): b"study",
    f"{paths.series_dir(STUDY, '4')}/metadata.gz": b"series",
    f"{paths.instance_dir(STUDY, '4', '5')}/frames/1": b"frame",
}


def _packed(tmp_path: Path) -> Archive:
    store = DirectoryStore(tmp_path)
    for name, data in FILES.items():
        store.write(name, data)
    with store.temporary_file() as tmp:
        write_study_zip(store, STUDY, tmp.handle, ArchiveOptions())
        store.commit(tmp, paths.study_zip(STUDY))
    return Archive(store)


def test_a_packed_study_is_unpacked_to_exactly_its_files(tmp_path: Path) -> None:
    archive = _packed(tmp_path)
    store = archive.store
    # Left by an older study or a killed unpack: not in the ZIP, so removed.
    store.write(f"{paths.series_dir(STUDY, '4')}/stray", b"x")
    store.write(f"{paths.series_dir(STUDY, '7')}/instances/8/metadata.gz", b"x")
    store.write(paths.study_metadata(STUDY), b"half written")
    with writing_study(archive, STUDY) as files:
        assert files is store
        assert not archive.is_packed(STUDY)
        files.write(f"{paths.instance_dir(STUDY, '4', '6')}/frames/1", b"new")
    assert {name: store.read(name) for name in files_under(store, paths.study_dir(STUDY))} == {
        **FILES,
        f"{paths.instance_dir(STUDY, '4', '6')}/frames/1": b"new",
    }
    assert not ensure_unpacked(archive, STUDY)


def test_writers_share_the_lock_and_exclusive_ones_wait(tmp_path: Path) -> None:
    archive = _packed(tmp_path)
    events: list[str] = []

    def refresh() -> None:
        with writing_study(archive, STUDY, exclusive=True):
            events.append("exclusive")

    with writing_study(archive, STUDY):
        with writing_study(archive, STUDY):  # another writer of the same study
            events.append("shared")
        waiting = threading.Thread(target=refresh)
        waiting.start()
        waiting.join(0.3)
        events.append("released")
    waiting.join(5)
    assert events == ["shared", "released", "exclusive"]


def test_an_exclusive_session_unpacks_too(tmp_path: Path) -> None:
    archive = _packed(tmp_path)
    with archive.lock(study_lock(STUDY), shared=True):
        pass
    with writing_study(archive, STUDY, exclusive=True) as files:
        assert files.read(paths.study_metadata(STUDY)) == b"study"
        assert not archive.is_packed(STUDY)
