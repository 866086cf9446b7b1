"""Packing studies in place and into other archives, and unpacking them, losslessly."""

from __future__ import annotations

import os
import shutil
import threading
import zipfile
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.errors import (
    ArchiveError,
    ArchiveOptionsMismatchError,
    InvalidStudyZipError,
    ResourceNotFoundError,
)
from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.index import Level, QidoIndex, Query
from dicomweb_archive.store.manifest import read_manifest, read_options
from dicomweb_archive.store.packing import pack_study, unpack_study
from dicomweb_archive.store.session import study_lock
from dicomweb_archive.store.studyzip import write_study_zip
from tests.conftest import read_json_gz, write_instance


def _contents(root: Path) -> dict[str, bytes]:
    """Every served file of an archive and its bytes (no times, no .dwa)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".dwa"]
        for name in files:
            path = Path(folder, name)
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def _root(archive: Archive) -> Path:
    return Path(archive.url)


def _convert(root: Path, inputs: Path, **options: object) -> None:
    opts = ConvertOptions(workers=1, **options)  # type: ignore[arg-type]
    assert Converter(root, opts).convert([str(inputs)]).ok


def _two_studies(tmp_path: Path) -> tuple[Archive, list[str]]:
    studies = [generate_uid(), generate_uid()]
    for n, study in enumerate(studies):
        series = generate_uid()
        for number in range(1, n + 3):
            write_instance(
                tmp_path / "in",
                study=study,
                series=series,
                patient_id=f"P{n}",
                instance_number=number,
                private_bytes=200,
            )
    _convert(tmp_path / "archive", tmp_path / "in")
    return open_archive(tmp_path / "archive"), studies


def test_pack_then_unpack_in_place_is_lossless(tmp_path: Path) -> None:
    archive, studies = _two_studies(tmp_path)
    before = _contents(_root(archive))
    study_list = archive.read(paths.STUDIES_INDEX)

    zipped = _root(archive) / pack_study(archive, studies[0], remove=True)
    assert zipped == (_root(archive) / paths.study_zip(studies[0]))
    assert not (_root(archive) / paths.study_dir(studies[0])).exists()
    assert archive.is_packed(studies[0]) and not archive.is_packed(studies[1])
    assert archive.study_uids() == sorted(studies)
    # The study list does not change: the study's own documents are in the ZIP.
    assert archive.read(paths.STUDIES_INDEX) == study_list
    assert (
        archive.read(paths.study_metadata(studies[0])) == before[paths.study_metadata(studies[0])]
    )
    # Packing again changes nothing.
    mtime = zipped.stat().st_mtime_ns
    pack_study(archive, studies[0], remove=True)
    assert zipped.stat().st_mtime_ns == mtime

    assert unpack_study(zipped, archive) == studies[0]
    assert not zipped.exists()
    assert _contents(_root(archive)) == before


def test_pack_keeps_the_folder_unless_asked(tmp_path: Path) -> None:
    archive, studies = _two_studies(tmp_path)
    before = _contents(_root(archive))
    pack_study(archive, studies[1])
    assert (_root(archive) / paths.study_dir(studies[1])).is_dir()
    assert archive.is_packed(studies[1])
    # Both there: the ZIP is the study; unpacking leaves the folder as it was.
    unpack_study((_root(archive) / paths.study_zip(studies[1])), archive)
    assert _contents(_root(archive)) == before
    with pytest.raises(ResourceNotFoundError):
        pack_study(archive, generate_uid())


def test_an_interrupted_unpack_is_finished_and_extra_files_go(tmp_path: Path) -> None:
    archive, studies = _two_studies(tmp_path)
    before = _contents(_root(archive))
    pack_study(archive, studies[0], remove=True)
    # As if killed midway: part of the folder written, and a file the ZIP lacks.
    archive.store.write(paths.study_metadata(studies[0]), b"stale")
    archive.store.write(f"{paths.study_dir(studies[0])}/series/stray/file", b"x")
    assert archive.read(paths.study_metadata(studies[0])) != b"stale"
    unpack_study((_root(archive) / paths.study_zip(studies[0])), archive)
    assert _contents(_root(archive)) == before


def test_qido_index_covers_packed_studies(tmp_path: Path) -> None:
    archive, studies = _two_studies(tmp_path)
    pack_study(archive, studies[0], remove=True)
    with QidoIndex(archive) as index:
        assert index.rebuild() == 2
        assert len(index.search(Level.INSTANCE, Query(study=studies[0]))) == 2
    # A lost study list is rebuilt from folders and ZIPs alike.
    archive.store.remove(paths.STUDIES_INDEX)
    _convert(_root(archive), tmp_path / "in")
    rows = read_json_gz(_root(archive) / paths.STUDIES_INDEX)
    assert sorted(r["0020000D"]["Value"][0] for r in rows) == sorted(studies)


def test_converting_into_a_packed_study_unpacks_it(tmp_path: Path) -> None:
    archive, studies = _two_studies(tmp_path)
    pack_study(archive, studies[0], remove=True)
    write_instance(tmp_path / "more", study=studies[0], series=generate_uid(), series_number=2)
    _convert(_root(archive), tmp_path / "more")
    assert not archive.is_packed(studies[0])
    rows = read_json_gz(_root(archive) / paths.STUDIES_INDEX)
    counts = {r["0020000D"]["Value"][0]: r["00201208"]["Value"][0] for r in rows}
    assert counts == {studies[0]: 3, studies[1]: 3}


def test_pack_into_another_archive_and_unpack_a_loose_zip(tmp_path: Path) -> None:
    archive, studies = _two_studies(tmp_path)
    before = _contents(_root(archive))
    target = open_archive(tmp_path / "zipped")
    for study in studies:
        pack_study(archive, study, target)
    assert _contents(_root(archive)) == before  # the source is untouched
    assert read_manifest(target) == read_manifest(archive)
    assert target.read(paths.STUDIES_INDEX) == archive.read(paths.STUDIES_INDEX)
    assert sorted(os.listdir(_root(target) / "studies")) == sorted(
        [f"{s}.zip" for s in studies] + ["index.json.gz"]
    )
    # A packed study packs into a third archive by copy; the bytes are the same.
    third = open_archive(tmp_path / "third")
    pack_study(target, studies[0], third)
    assert third.read(paths.study_zip(studies[0])) == target.read(paths.study_zip(studies[0]))

    # Loose ZIPs unpack into a new archive: the same tree as the original.
    loose = tmp_path / "loose"
    loose.mkdir()
    for study in studies:
        shutil.copy((_root(target) / paths.study_zip(study)), loose / f"{study}.zip")
    fresh = open_archive(tmp_path / "fresh")
    for study in studies:
        assert unpack_study(loose / f"{study}.zip", fresh) == study
    assert _contents(_root(fresh)) == before
    # Again: nothing changes.  With other content: refused, never merged.
    unpack_study(loose / f"{studies[0]}.zip", fresh)
    assert _contents(_root(fresh)) == before
    fresh.store.write(paths.study_metadata(studies[0]), b"changed")
    with pytest.raises(ArchiveError, match="not merged"):
        unpack_study(loose / f"{studies[0]}.zip", fresh)
    # The target now holds studies[0] as a folder: packing over it is refused.
    with pytest.raises(ArchiveError, match="unpacked"):
        pack_study(archive, studies[0], fresh)


def test_options_must_match(tmp_path: Path) -> None:
    archive, studies = _two_studies(tmp_path)
    raw = tmp_path / "raw"
    write_instance(tmp_path / "other", study=generate_uid(), series=generate_uid())
    _convert(raw, tmp_path / "other", frames="raw")
    with pytest.raises(ArchiveOptionsMismatchError):
        pack_study(archive, studies[0], open_archive(raw))
    zipped = (
        tmp_path / "zipped" / pack_study(archive, studies[0], open_archive(tmp_path / "zipped"))
    )
    with pytest.raises(ArchiveOptionsMismatchError):
        unpack_study(zipped, open_archive(raw))
    with pytest.raises(ValueError, match="in place"):
        pack_study(archive, studies[0], open_archive(raw), remove=True)
    with pytest.raises(ArchiveError, match="no manifest"):
        pack_study(open_archive(tmp_path / "nothing"), studies[0])


def test_a_zip_without_options_is_not_imported(tmp_path: Path) -> None:
    archive, studies = _two_studies(tmp_path)
    path = _root(archive) / pack_study(archive, studies[0])
    bare = tmp_path / "bare.zip"
    shutil.copy(path, bare)
    with zipfile.ZipFile(bare, "a") as z:
        z.comment = b""
    with pytest.raises(InvalidStudyZipError, match="options"):
        unpack_study(bare, open_archive(tmp_path / "new"))


def test_conversion_waits_for_a_pack_under_way(tmp_path: Path) -> None:
    archive, studies = _two_studies(tmp_path)
    study = studies[0]
    write_instance(tmp_path / "more", study=study, series=generate_uid(), series_number=2)
    done = threading.Event()

    def convert() -> None:
        _convert(_root(archive), tmp_path / "more")
        done.set()

    worker = threading.Thread(target=convert)
    with archive.lock(study_lock(study)):
        # What pack_study does under the lock, while a conversion arrives.
        worker.start()
        with archive.store.temporary_file() as tmp:
            write_study_zip(archive.store, study, tmp.handle, read_options(archive))
            archive.store.commit(tmp, paths.study_zip(study))
        shutil.rmtree(_root(archive) / paths.study_dir(study))
        assert not done.wait(0.5)
    worker.join(30)
    assert done.is_set() and not archive.is_packed(study)
    rows = read_json_gz(_root(archive) / paths.STUDIES_INDEX)
    counts = {r["0020000D"]["Value"][0]: r["00201208"]["Value"][0] for r in rows}
    assert counts[study] == 3


def test_a_symbolic_link_in_a_study_folder_is_not_packed(tmp_path: Path) -> None:
    archive, studies = _two_studies(tmp_path)
    secret = tmp_path / "secret"
    secret.write_bytes(b"secret")
    study = _root(archive) / paths.study_dir(studies[0])
    (study / "planted").symlink_to(secret)
    with pytest.raises(InvalidStudyZipError, match="planted: reached through a symbolic link"):
        pack_study(archive, studies[0])
    assert not archive.is_packed(studies[0])
    assert not (_root(archive) / paths.study_zip(studies[0])).exists()
    (study / "planted").unlink()
    (study / "linked").symlink_to(tmp_path / "in", target_is_directory=True)
    with pytest.raises(InvalidStudyZipError, match="linked: reached through a symbolic link"):
        pack_study(archive, studies[0])
