"""The synthetic CT series: readable, consistent geometry, deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from dicomweb_archive.demo.samples import (
    MULTIFRAME_SOP_CLASS,
    PADDING_VALUE,
    write_ct_series,
    write_multiframe,
)

SLICES, ROWS, COLUMNS = 4, 64, 48


@pytest.fixture
def series(tmp_path: Path) -> list[pydicom.Dataset]:
    files = write_ct_series(tmp_path / "ct", slices=SLICES, rows=ROWS, columns=COLUMNS, seed=7)
    assert [f.name for f in files] == [
        "CT0001.dcm",
        "CT0002.dcm",
        "CT0003.dcm",
        "CT0004.dcm",
    ]
    return [pydicom.dcmread(f) for f in files]


def test_files_are_ct_image_storage(series: list[pydicom.Dataset]) -> None:
    for number, ds in enumerate(series, 1):
        assert ds.preamble is not None
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == CTImageStorage
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.Modality == "CT"
        assert ds.InstanceNumber == number
        assert ds.PatientName == "Demo^CT" and ds.PatientID == "DWA-DEMO-1"
        for keyword in (
            "StudyDate",
            "StudyTime",
            "AccessionNumber",
            "StudyID",
            "Manufacturer",
            "ReferringPhysicianName",
            "PatientBirthDate",
            "PatientSex",
            "SeriesNumber",
            "FrameOfReferenceUID",
        ):
            assert keyword in ds, keyword


def test_pixels_are_signed_16_bit_hounsfield(series: list[pydicom.Dataset]) -> None:
    for ds in series:
        assert (ds.Rows, ds.Columns) == (ROWS, COLUMNS)
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (16, 16, 15)
        assert ds.PixelRepresentation == 1
        assert ds.SamplesPerPixel == 1 and ds.PhotometricInterpretation == "MONOCHROME2"
        assert float(ds.RescaleSlope) == 1 and float(ds.RescaleIntercept) == -1024
        assert ds.RescaleType == "HU"
        assert len(ds.WindowCenter) == len(ds.WindowWidth) == 2
        pixels = ds.pixel_array
        assert pixels.dtype == np.int16 and pixels.shape == (ROWS, COLUMNS)
        hu = pixels.astype(np.int32) - 1024
        assert pixels[0, 0] == PADDING_VALUE == ds.PixelPaddingValue  # outside the FOV
        inside = pixels != PADDING_VALUE
        assert hu[inside].min() < -700  # air or lung
        assert hu[inside].max() > 200  # bone or contrast
        assert abs(np.median(hu[ROWS // 2 - 4 : ROWS // 2 + 4, COLUMNS // 2])) < 150


def test_geometry_builds_a_volume(series: list[pydicom.Dataset]) -> None:
    orientation = np.array(series[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([ds.ImagePositionPatient for ds in series], dtype=float)
    along = positions @ normal
    steps = np.diff(along)
    thickness = float(series[0].SliceThickness)
    assert np.allclose(np.abs(steps), thickness)
    assert np.all(steps < 0) or np.all(steps > 0)
    assert np.allclose(positions[:, :2], positions[0, :2])
    for ds, position in zip(series, positions, strict=True):
        assert list(ds.ImageOrientationPatient) == list(orientation)
        assert ds.PixelSpacing == series[0].PixelSpacing
        assert float(ds.SliceLocation) == pytest.approx(position[2])
        assert ds.FrameOfReferenceUID == series[0].FrameOfReferenceUID
    # The volume is centred on the patient: the middle pixel is near x = y = 0.
    spacing = [float(v) for v in series[0].PixelSpacing]
    centre = positions[0, :2] + [
        (COLUMNS - 1) / 2 * spacing[1],
        (ROWS - 1) / 2 * spacing[0],
    ]
    assert np.allclose(centre, 0, atol=spacing[0])


def test_uids(series: list[pydicom.Dataset]) -> None:
    assert len({ds.SOPInstanceUID for ds in series}) == SLICES
    assert len({ds.StudyInstanceUID for ds in series}) == 1
    assert len({ds.SeriesInstanceUID for ds in series}) == 1
    for ds in series:
        for uid in (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID):
            assert uid.is_valid and len(uid) <= 64


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    first = write_ct_series(tmp_path / "a", slices=2, rows=32, columns=32, seed=3)
    again = write_ct_series(tmp_path / "b", slices=2, rows=32, columns=32, seed=3)
    other = write_ct_series(tmp_path / "c", slices=2, rows=32, columns=32, seed=4)
    for a, b, c in zip(first, again, other, strict=True):
        assert a.read_bytes() == b.read_bytes()
        assert a.read_bytes() != c.read_bytes()
    assert pydicom.dcmread(first[0]).StudyInstanceUID != pydicom.dcmread(other[0]).StudyInstanceUID


def test_series_join_a_given_study(tmp_path: Path) -> None:
    study = "1.2.826.0.1.3680043.8.498.1"
    one = write_ct_series(
        tmp_path / "1",
        slices=1,
        rows=16,
        columns=16,
        study_instance_uid=study,
        series_number=1,
    )
    two = write_ct_series(
        tmp_path / "2",
        slices=1,
        rows=16,
        columns=16,
        study_instance_uid=study,
        series_number=2,
    )
    a, b = pydicom.dcmread(one[0]), pydicom.dcmread(two[0])
    assert a.StudyInstanceUID == b.StudyInstanceUID == study
    assert a.SeriesInstanceUID != b.SeriesInstanceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert (a.SeriesNumber, b.SeriesNumber) == (1, 2)


def test_converts_into_an_archive(tmp_path: Path) -> None:
    from dicomweb_archive import Converter, ConvertOptions

    files = write_ct_series(tmp_path / "ct", slices=3, rows=32, columns=32)
    result = Converter(tmp_path / "archive", ConvertOptions(workers=1)).convert(
        [str(tmp_path / "ct")]
    )
    assert result.ok and result.counts["converted"] == len(files) and result.frames == 3


def test_a_multiframe_instance_written_a_frame_at_a_time(tmp_path: Path) -> None:
    path = write_multiframe(tmp_path / "mf.dcm", frames=5, rows=64, columns=48)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == MULTIFRAME_SOP_CLASS and ds.NumberOfFrames == 5
    pixels = ds.pixel_array
    assert pixels.shape == (5, 64, 48) and pixels.max() < 1 << ds.BitsStored
    assert len({frame.tobytes() for frame in pixels}) == 5
    again = write_multiframe(tmp_path / "again.dcm", frames=5, rows=64, columns=48)
    assert again.read_bytes() == path.read_bytes()
    other = write_multiframe(tmp_path / "other.dcm", frames=5, rows=64, columns=48, seed=1)
    assert pydicom.dcmread(other).SOPInstanceUID != ds.SOPInstanceUID
    with pytest.raises(ValueError, match="exceed a value's 4 GB"):
        write_multiframe(tmp_path / "huge.dcm", frames=8193)
