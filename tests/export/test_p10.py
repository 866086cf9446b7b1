"""Round trip: every convertible reference file → archive → P10 → same values."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.export.p10 import export_instance
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.uids import (
    NATIVE_TRANSFER_SYNTAXES,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from tests.reference import EXPECTED_FAILURES, EXPECTED_SKIPS, reference_files

FILES = [p for p in reference_files() if p.name not in {*EXPECTED_FAILURES, *EXPECTED_SKIPS}]
SKIPPED = {0x7FE00001, 0x7FE00002, 0xFFFCFFFC, 0x7FE00010}


def _read(path: Path) -> Dataset:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return pydicom.dcmread(io.BytesIO(data), force=True)


def _source_syntax(original: Dataset) -> str:
    """The transfer syntax the source is encoded in.

    The file meta decides for encapsulated and deflated data; for the
    other native syntaxes the encoding read wins (a meta may be missing or
    name another syntax than the dataset's encoding).
    """
    named = str(getattr(original, "file_meta", {}).get("TransferSyntaxUID", ""))
    if named and (named not in NATIVE_TRANSFER_SYNTAXES or named == DeflatedExplicitVRLittleEndian):
        return named
    implicit, little = original.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _number_of_frames(original: Dataset) -> int:
    """Number of Frames as the archive takes it: 1 when missing or not a number."""
    try:
        return int(original.get("NumberOfFrames", 1) or 1)
    except ValueError:
        return 1


def _number(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value).strip()


def _value(elem: Any) -> Any:
    value = elem.value
    if elem.VR in ("DS", "IS") and value not in (None, ""):
        # Semantically equal: "350.000000" and 350.0 are the same number.
        if isinstance(value, list | pydicom.multival.MultiValue):
            return [_number(v) for v in value]
        return _number(value)
    if elem.VR == "SQ":
        return [_dataset(item) for item in value]
    if isinstance(value, bytes):
        return value.rstrip(b"\x00 ")
    if isinstance(value, list | pydicom.multival.MultiValue):
        return [str(v).strip() for v in value]
    if value is None or value == "":
        return None
    return str(value).strip()


def _dataset(ds: Dataset) -> dict[int, Any]:
    return {
        int(e.tag): _value(e)
        for e in ds
        if int(e.tag) not in SKIPPED and e.tag.element != 0 and e.tag.group != 2
    }


def undefined_lengths(ds: Dataset, prefix: str = "") -> set[str]:
    """Paths of the sequences and items encoded with undefined length (Pixel Data aside)."""
    found = set()
    for elem in ds:
        key = f"{prefix}{int(elem.tag):08X}"
        if int(elem.tag) == 0x7FE00010 and not prefix:
            continue
        if elem.is_undefined_length:
            found.add(key)
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value):
                if getattr(item, "is_undefined_length_sequence_item", False):
                    found.add(f"{key}/{index}")
                found |= undefined_lengths(item, f"{key}/{index}/")
    return found


@pytest.mark.parametrize("source", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_round_trip(source: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    result = Converter(archive, ConvertOptions(workers=1)).convert([str(source)])
    assert result.ok, result.to_json()
    original = _read(source)
    study, series, sop = (
        original.StudyInstanceUID,
        original.SeriesInstanceUID,
        original.SOPInstanceUID,
    )
    regenerated = export_instance(open_archive(archive), study, series, sop)
    exported = pydicom.dcmread(io.BytesIO(regenerated))
    assert exported.file_meta.TransferSyntaxUID == _source_syntax(original)
    assert _dataset(exported) == _dataset(original)
    # Sequences and items keep the length encoding they had.
    assert undefined_lengths(exported) == undefined_lengths(original)
    if "PixelData" not in original:
        return
    nr = _number_of_frames(original)
    if exported.file_meta.TransferSyntaxUID in NATIVE_TRANSFER_SYNTAXES:
        # Every byte: the frames, and whatever followed them in the value.
        assert original.PixelData and exported.PixelData == original.PixelData
    else:
        extended = None
        if "ExtendedOffsetTable" in original:
            extended = (original.ExtendedOffsetTable, original.ExtendedOffsetTableLengths)
        want = list(
            generate_frames(original.PixelData, number_of_frames=nr, extended_offsets=extended)
        )[:nr]
        got = list(generate_frames(exported.PixelData, number_of_frames=nr))
        assert got == want


def _exported(tmp_path: Path, ds: Dataset, name: str = "in.dcm") -> tuple[Dataset, bytes]:
    source = tmp_path / name
    ds.save_as(source)
    archive = tmp_path / "archive"
    assert Converter(archive, ConvertOptions(workers=1)).convert([str(source)]).ok
    [metadata] = archive.glob("studies/*/series/*/instances/*/metadata.gz")
    key = [metadata.parents[n].name for n in (4, 2, 0)]
    data = export_instance(open_archive(archive), *key)
    return pydicom.dcmread(io.BytesIO(data)), data


def test_export_keeps_the_file_meta_the_readme_names(tmp_path: Path) -> None:
    """README: the source's file meta elements; PS3.10's fixes are named there."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.file_meta.ImplementationClassUID = "1.2.3.4.5"
    ds.file_meta.ImplementationVersionName = "SOURCE_1"
    ds.file_meta.SourceApplicationEntityTitle = "MODALITY"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.999"  # not the dataset's
    exported, _ = _exported(tmp_path, ds)
    meta = exported.file_meta
    assert meta.ImplementationClassUID == "1.2.3.4.5"
    assert meta.ImplementationVersionName == "SOURCE_1"
    assert meta.SourceApplicationEntityTitle == "MODALITY"
    assert meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert meta.MediaStorageSOPClassUID == ds.SOPClassUID


def test_export_adds_only_the_file_meta_the_source_lacked(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for keyword in ("ImplementationVersionName", "FileMetaInformationVersion"):
        if keyword in ds.file_meta:
            delattr(ds.file_meta, keyword)
    exported, _ = _exported(tmp_path, ds)
    added = {e.keyword for e in exported.file_meta} - {e.keyword for e in ds.file_meta}
    assert added <= {
        "FileMetaInformationGroupLength",
        "FileMetaInformationVersion",
        "ImplementationVersionName",
    }
    assert exported.file_meta.FileMetaInformationVersion == b"\x00\x01"


def test_export_leaves_out_group_lengths_and_trailing_padding(tmp_path: Path) -> None:
    """README: they describe one file's encoding and are left out, in metadata and export."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.add_new(0x00080000, "UL", 0)  # a (retired) group length
    ds.add_new(0xFFFCFFFC, "OB", b"\x00" * 16)
    exported, _ = _exported(tmp_path, ds)
    assert 0x00080000 not in exported and 0xFFFCFFFC not in exported
    [metadata] = (tmp_path / "archive").glob("studies/*/series/*/instances/*/metadata.gz")
    document = gzip.decompress(metadata.read_bytes())
    assert b'"00080000"' not in document and b'"FFFCFFFC"' not in document
