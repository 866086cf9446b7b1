"""The study ZIP format: entries at fixed offsets, reproducible, and safe to open."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.errors import InvalidStudyZipError, ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.store.directory import DirectoryStore
from dicomweb_archive.store.manifest import ArchiveOptions
from dicomweb_archive.store.studyzip import StudyZip, write_study_zip
from tests.conftest import write_instance

STUDY = "1.2.3.4"


def _archive(tmp_path: Path) -> tuple[DirectoryStore, str]:
    study = generate_uid()
    series = generate_uid()
    for number in (1, 2):
        write_instance(
            tmp_path / "in",
            study=study,
            series=series,
            instance_number=number,
            frames=2,
            private_bytes=300,
        )
    root = tmp_path / "archive"
    result = Converter(root, ConvertOptions(workers=1)).convert([str(tmp_path / "in")])
    assert result.ok
    return DirectoryStore(root), study


def _pack(archive: DirectoryStore, study: str, out: Path) -> Path:
    with open(out, "wb") as handle:
        write_study_zip(archive, study, handle, ArchiveOptions())
    return out


def test_entries_are_stored_at_their_offsets(tmp_path: Path) -> None:
    archive, study = _archive(tmp_path)
    packed_path = _pack(archive, study, tmp_path / "study.zip")
    raw = packed_path.read_bytes()
    folder = {
        str(p.relative_to(archive.root)): p.read_bytes()
        for p in (archive.root / paths.study_dir(study)).rglob("*")
        if p.is_file()
    }
    with StudyZip(packed_path) as packed:
        assert packed.study_instance_uid == study
        assert packed.options == ArchiveOptions()
        assert packed.names() == sorted(folder)
        assert len(packed) == len(folder)
        assert any("/bulkdata/" in name for name in packed.names())
        assert sum("/frames/" in name for name in packed.names()) == 4
        for name, data in folder.items():
            entry = packed.entry(name)
            assert raw[entry.offset : entry.offset + entry.length] == data
            assert packed.read(name) == data
            assert name in packed and packed.exists(name)
            assert b"".join(packed.iter_bytes(name, chunk_size=7)) == data
            assert b"".join(packed.iter_bytes(name, 3, 10)) == data[3:10]
        assert packed.read_json_gz(paths.study_row(study))[0]["0020000D"]["Value"] == [study]
        assert "studies/other" not in packed
        with pytest.raises(ResourceNotFoundError):
            packed.entry(f"{paths.study_dir(study)}/nothing")
    with zipfile.ZipFile(packed_path) as check:
        assert check.testzip() is None
        assert {i.compress_type for i in check.infolist()} == {zipfile.ZIP_STORED}
        assert {i.date_time for i in check.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-tq", str(packed_path)], check=True, capture_output=True)


def test_packing_is_reproducible(tmp_path: Path) -> None:
    archive, study = _archive(tmp_path)
    first = _pack(archive, study, tmp_path / "a.zip").read_bytes()
    second = _pack(archive, study, tmp_path / "b.zip").read_bytes()
    assert first == second


def test_version_and_replacement(tmp_path: Path) -> None:
    archive, study = _archive(tmp_path)
    path = _pack(archive, study, tmp_path / "study.zip")
    with StudyZip(path, study=study) as packed:
        name = packed.names()[0]
        before = packed.read(name)
        assert packed.is_current() and packed.version
        replacement = tmp_path / "other.zip"
        shutil.copy(path, replacement)
        replacement.replace(path)
        # The open file keeps answering; the caller learns it was replaced.
        assert not packed.is_current()
        assert packed.read(name) == before
    with pytest.raises(InvalidStudyZipError):
        StudyZip(path, study="1.2.3")


def _zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("entries", "compression", "reason"),
    [
        ({f"studies/{STUDY}/../x": b"1"}, zipfile.ZIP_STORED, "not a path inside"),
        ({f"studies/{STUDY}/a": b"1", "studies/9.9/b": b"2"}, zipfile.ZIP_STORED, "inside"),
        ({f"studies/{STUDY}/a\\b": b"1"}, zipfile.ZIP_STORED, "not a path inside"),
        ({f"studies/{STUDY}//a": b"1"}, zipfile.ZIP_STORED, "not a path inside"),
        ({"/etc/passwd": b"1"}, zipfile.ZIP_STORED, "entries are not under"),
        ({"studies/not-a-uid/a": b"1"}, zipfile.ZIP_STORED, "entries are not under"),
        ({f"studies/{STUDY}/a": b"1" * 100}, zipfile.ZIP_DEFLATED, "compressed"),
        ({}, zipfile.ZIP_STORED, "holds no files"),
    ],
)
def test_refuses_foreign_layouts(
    tmp_path: Path, entries: dict[str, bytes], compression: int, reason: str
) -> None:
    path = tmp_path / "bad.zip"
    path.write_bytes(_zip(entries, compression))
    with pytest.raises(InvalidStudyZipError, match=reason):
        StudyZip(path)


def test_refuses_damaged_files(tmp_path: Path) -> None:
    path = tmp_path / "bad.zip"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(InvalidStudyZipError, match="not a readable ZIP"):
        StudyZip(path)
    with pytest.raises(ResourceNotFoundError):
        StudyZip(tmp_path / "missing.zip")

    name = f"studies/{STUDY}/metadata.gz"
    good = _zip({name: b"payload"})
    # The local header names another file than the central directory does.
    forged = good.replace(name.encode(), f"studies/{STUDY}/metadata.gx".encode(), 1)
    path.write_bytes(forged)
    with StudyZip(path) as packed, pytest.raises(InvalidStudyZipError, match="local header"):
        packed.entry(name)
    # The local header claims another size than the central directory.
    sizes = good.replace(struct.pack("<LL", 7, 7), struct.pack("<LL", 9, 9), 1)
    path.write_bytes(sizes)
    with StudyZip(path) as packed, pytest.raises(InvalidStudyZipError, match="differ"):
        packed.entry(name)
    # The data is damaged: the CRC check of read() catches it.
    path.write_bytes(good.replace(b"payload", b"paylaod", 1))
    with StudyZip(path) as packed, pytest.raises(InvalidStudyZipError, match="CRC"):
        packed.read(name)


def test_zip64_local_headers(tmp_path: Path) -> None:
    """Entries written with ZIP64 local headers are located through the ZIP64 extra."""
    path = tmp_path / "zip64.zip"
    name = f"studies/{STUDY}/series/1.2/instances/1.3/frames/1"
    with zipfile.ZipFile(path, "w") as z, z.open(name, "w", force_zip64=True) as target:
        target.write(b"frame bytes")
    raw = path.read_bytes()
    assert struct.unpack_from("<LL", raw, 18) == (0xFFFFFFFF, 0xFFFFFFFF)
    with StudyZip(path) as packed:
        entry = packed.entry(name)
        assert raw[entry.offset : entry.offset + entry.length] == b"frame bytes"
