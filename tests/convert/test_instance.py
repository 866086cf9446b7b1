"""store_instance: one parsed instance into the archive, the path of convert and STOW-RS."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from dicomweb_archive.convert.instance import store_instance
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.errors import MalformedDicomError
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.p10.reader import read_instance
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.manifest import ensure
from dicomweb_archive.store.packing import pack_study
from tests.conftest import read_json_gz, write_instance

OPTIONS = ConvertOptions(workers=1)


def _root(archive: Archive) -> Path:
    return Path(archive.store.url)


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    archive = open_archive(tmp_path / "archive")
    ensure(archive.store, OPTIONS.archive_options())
    return archive


def _store(archive: Archive, source: Path | bytes, options: ConvertOptions = OPTIONS) -> object:
    data = source if isinstance(source, bytes) else source.read_bytes()
    return store_instance(archive, options, read_instance(io.BytesIO(data), "input.dcm"))


def test_new_same_and_changed_instance(tmp_path: Path, archive: Archive) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    source = write_instance(tmp_path, study=study, series=series, sop=sop, frames=3)
    first = store_instance(archive, OPTIONS, read_instance(io.BytesIO(source.read_bytes()), "a"))
    assert (first.status, first.frames, first.sop_instance_uid) == ("converted", 3, sop)
    assert (first.study_instance_uid, first.series_instance_uid) == (study, series)
    root = _root(archive)
    [meta] = read_json_gz(root / paths.instance_metadata(study, series, sop))
    assert meta["7FE00010"]["BulkDataURI"] == paths.pixel_data_uri(series, sop)
    assert meta["00083002"]["Value"] == ["1.2.840.10008.1.2.1"]
    info = read_json_gz(root / paths.instance_info(study, series, sop))
    assert info["pixelData"]["numberOfFrames"] == 3
    assert info["source"]["name"] == "a"

    again = store_instance(archive, OPTIONS, read_instance(io.BytesIO(source.read_bytes()), "b"))
    assert again.status == "unchanged"

    fewer = write_instance(tmp_path / "fewer", study=study, series=series, sop=sop, frames=1)
    updated = _store(archive, fewer)
    assert updated.status == "updated"  # type: ignore[attr-defined]
    frames = root / paths.instance_dir(study, series, sop) / "frames"
    assert sorted(p.name for p in frames.iterdir()) == ["1"]


def test_bulk_data_is_stored_once_under_its_digest(tmp_path: Path, archive: Archive) -> None:
    study, series = generate_uid(), generate_uid()
    for number in (1, 2):
        _store(
            archive,
            write_instance(
                tmp_path, study=study, series=series, instance_number=number, private_bytes=300
            ),
        )
    ds = pydicom.dcmread(next(tmp_path.glob("*.dcm")))
    value = ds[0x00111001].value
    digest = hashlib.sha256(value).hexdigest()
    stored = _root(archive) / paths.bulkdata_path(study, digest)
    _, payload = multipart.unwrap(stored.read_bytes())
    assert payload == value
    assert len(list((_root(archive) / paths.study_dir(study) / "bulkdata").rglob("*"))) == 2


def test_raw_frames_are_stored_bare(tmp_path: Path) -> None:
    options = ConvertOptions(workers=1, frames="raw")
    archive = open_archive(tmp_path / "archive")
    ensure(archive.store, options.archive_options())
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    source = write_instance(tmp_path, study=study, series=series, sop=sop, rows=4, columns=4)
    _store(archive, source, options)
    frame = _root(archive) / paths.frame_path(study, series, sop, 1)
    assert frame.read_bytes() == pydicom.dcmread(source).PixelData


def test_a_payload_holding_the_boundary_is_refused(tmp_path: Path, archive: Archive) -> None:
    source = write_instance(tmp_path, study=generate_uid(), series=generate_uid())
    ds = pydicom.dcmread(source)
    delimiter = f"\r\n--{multipart.BOUNDARY}".encode("ascii")
    pixels = bytearray(ds.PixelData)
    pixels[100 : 100 + len(delimiter)] = delimiter
    ds.PixelData = bytes(pixels)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(MalformedDicomError, match="multipart boundary"):
        _store(archive, buffer.getvalue())


def test_a_packed_study_is_unpacked_first(tmp_path: Path, archive: Archive) -> None:
    study, series = generate_uid(), generate_uid()
    _store(archive, write_instance(tmp_path, study=study, series=series, instance_number=1))
    pack_study(archive, study, remove=True)
    assert archive.is_packed(study)
    outcome = _store(
        archive, write_instance(tmp_path, study=study, series=series, instance_number=2)
    )
    assert outcome.status == "converted"  # type: ignore[attr-defined]
    assert not archive.is_packed(study)
    instances = _root(archive) / paths.series_dir(study, series) / "instances"
    assert len(list(instances.iterdir())) == 2
