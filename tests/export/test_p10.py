"""Round trip: every convertible reference file → archive → P10 → same values."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import pydicom
import pytest
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
