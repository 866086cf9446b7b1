"""Archived instances regenerated as Explicit VR Little Endian P10: which can be,
and what they hold (the source's values, frames decoded, words in order)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomweb_archive import Converter, ConvertOptions, tags, uids
from dicomweb_archive.errors import UnsupportedTransferSyntaxError
from dicomweb_archive.export.transcode import can_transcode, to_explicit_little_endian
from dicomweb_archive.model import paths
from dicomweb_archive.store.url import open_store
from dicomweb_archive.types import JSONDataset

#: Source file, and the file holding its pixels natively when pydicom cannot
#: decode the source here (or to check a big-endian source against).
SOURCES = {
    "CT_small.dcm": None,
    "MR_small_implicit.dcm": None,
    "MR_small_bigendian.dcm": "MR_small.dcm",
    "image_dfl.dcm": None,
    "MR_small_jp2klossless.dcm": "MR_small.dcm",
    "emri_small_jpeg_ls_lossless.dcm": "emri_small.dcm",
    "SC_rgb_rle_2frame.dcm": "SC_rgb_2frame.dcm",
    "US1_J2KR.dcm": "US1_UNCR.dcm",
    "gdcm-US-ALOKA-16_big.dcm": "gdcm-US-ALOKA-16.dcm",
    "test-SR.dcm": None,
}


def _instance_meta(archive: Path, ds: pydicom.Dataset) -> JSONDataset:
    store = open_store(archive)
    path = paths.instance_metadata(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    [meta] = store.read_json_gz(path)
    return dict(meta)


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One archive per source: several reference files share their UIDs."""
    root = tmp_path_factory.mktemp("transcode")
    out = {}
    for index, name in enumerate(SOURCES):
        archive = root / str(index)
        result = Converter(archive, ConvertOptions(workers=1)).convert([get_testdata_file(name)])
        assert result.ok, result
        out[name] = archive
    return out


def _regenerated(archive: Path, name: str) -> tuple[pydicom.Dataset, pydicom.Dataset]:
    source = pydicom.dcmread(get_testdata_file(name))
    meta = _instance_meta(archive, source)
    data = to_explicit_little_endian(
        open_store(archive),
        source.StudyInstanceUID,
        source.SeriesInstanceUID,
        source.SOPInstanceUID,
        meta,
    )
    return source, pydicom.dcmread(io.BytesIO(data))


@pytest.mark.parametrize("name", SOURCES)
def test_regenerated_as_explicit_little_endian(archives: dict[str, Path], name: str) -> None:
    source, got = _regenerated(archives[name], name)
    assert got.file_meta.TransferSyntaxUID == uids.ExplicitVRLittleEndian
    assert got.original_encoding == (False, True)
    assert got.SOPInstanceUID == source.SOPInstanceUID
    assert got.PatientName == source.PatientName
    assert got.StudyDate == source.StudyDate
    if "PixelData" not in source:
        assert "PixelData" not in got
        assert got.ContentSequence == source.ContentSequence
        return
    twin = SOURCES[name]
    expected = pydicom.dcmread(get_testdata_file(twin)) if twin else source
    assert np.array_equal(got.pixel_array, expected.pixel_array)
    if twin and "J2K" in name.upper() and source.SamplesPerPixel == 3:
        # The decoder undid the colour transform.
        assert got.PhotometricInterpretation == "RGB" and got.PlanarConfiguration == 0


def test_big_endian_words_are_turned_around(archives: dict[str, Path]) -> None:
    # The segmented palette lookup tables (OW), besides Pixel Data.
    _, got = _regenerated(archives["gdcm-US-ALOKA-16_big.dcm"], "gdcm-US-ALOKA-16_big.dcm")
    little = pydicom.dcmread(get_testdata_file("gdcm-US-ALOKA-16.dcm"))
    for keyword in (
        "SegmentedRedPaletteColorLookupTableData",
        "SegmentedBluePaletteColorLookupTableData",
    ):
        element = little[keyword]
        assert element.VR == "OW" and got[keyword].value == element.value, keyword


def test_explicit_little_endian_sources_keep_their_bytes(archives: dict[str, Path]) -> None:
    source, got = _regenerated(archives["CT_small.dcm"], "CT_small.dcm")
    assert got.PixelData == source.PixelData


def test_compressed_frames_without_a_syntax_are_refused(archives: dict[str, Path]) -> None:
    source = pydicom.dcmread(get_testdata_file("US1_J2KR.dcm"))
    meta = _instance_meta(archives["US1_J2KR.dcm"], source)
    del meta[tags.AvailableTransferSyntaxUID]
    with pytest.raises(UnsupportedTransferSyntaxError, match="frames have no transfer syntax"):
        to_explicit_little_endian(
            open_store(archives["US1_J2KR.dcm"]),
            source.StudyInstanceUID,
            source.SeriesInstanceUID,
            source.SOPInstanceUID,
            meta,
        )


# -- can_transcode -----------------------------------------------------------


def _image(syntax: str | None, **changes: Any) -> JSONDataset:
    meta: JSONDataset = {
        tags.Rows: {"vr": "US", "Value": [4]},
        tags.Columns: {"vr": "US", "Value": [4]},
        tags.SamplesPerPixel: {"vr": "US", "Value": [1]},
        tags.BitsAllocated: {"vr": "US", "Value": [16]},
        tags.BitsStored: {"vr": "US", "Value": [12]},
        tags.PixelRepresentation: {"vr": "US", "Value": [0]},
        tags.PhotometricInterpretation: {"vr": "CS", "Value": ["MONOCHROME2"]},
        tags.PixelData: {"vr": "OB", "BulkDataURI": "frames"},
    }
    if syntax:
        meta[tags.AvailableTransferSyntaxUID] = {"vr": "UI", "Value": [syntax]}
    for key, value in changes.items():
        meta[getattr(tags, key)] = {"vr": "US", "Value": [value]}
    return meta


J2K = "1.2.840.10008.1.2.4.90"
MPEG2 = "1.2.840.10008.1.2.4.100"


@pytest.mark.parametrize(
    ("meta", "source", "target", "possible"),
    [
        # As stored, or whatever the archive holds.
        (_image(MPEG2), MPEG2, MPEG2, True),
        (_image(MPEG2), MPEG2, "*", True),
        # Only Explicit VR Little Endian is made.
        (_image(uids.ExplicitVRLittleEndian), uids.ExplicitVRLittleEndian, J2K, False),
        (_image(J2K), J2K, uids.ImplicitVRLittleEndian, False),
        # Native sources and instances without pixels always can.
        (
            _image(uids.ExplicitVRLittleEndian),
            uids.ExplicitVRBigEndian,
            uids.ExplicitVRLittleEndian,
            True,
        ),
        (
            _image(uids.ExplicitVRLittleEndian),
            uids.ImplicitVRLittleEndian,
            uids.ExplicitVRLittleEndian,
            True,
        ),
        (
            _image(uids.ExplicitVRLittleEndian),
            uids.DeflatedExplicitVRLittleEndian,
            uids.ExplicitVRLittleEndian,
            True,
        ),
        ({tags.Modality: {"vr": "CS", "Value": ["SR"]}}, J2K, uids.ExplicitVRLittleEndian, True),
        # Compressed sources when their frames can be decoded.
        (_image(J2K), J2K, uids.ExplicitVRLittleEndian, True),
        (_image(uids.RLELossless), uids.RLELossless, uids.ExplicitVRLittleEndian, True),
        (_image(MPEG2), MPEG2, uids.ExplicitVRLittleEndian, False),
        (_image(None), J2K, uids.ExplicitVRLittleEndian, False),
        (_image(J2K, BitsAllocated=1), J2K, uids.ExplicitVRLittleEndian, False),
        ({**_image(J2K), tags.Rows: {"vr": "US"}}, J2K, uids.ExplicitVRLittleEndian, False),
    ],
)
def test_can_transcode(meta: JSONDataset, source: str, target: str, possible: bool) -> None:
    assert can_transcode(meta, source, target) is possible
