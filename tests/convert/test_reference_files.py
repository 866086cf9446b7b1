"""Every real file from pydicom and pydicom-data converts correctly or fails clearly.

Metadata is compared element by element with what pydicom reads from the same
file, and every frame byte for byte with pydicom's own frame extraction.
"""

from __future__ import annotations

import base64
import gzip
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.multival import MultiValue
from pydicom.pixels.utils import get_expected_length
from pydicom.valuerep import PersonName

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.uids import NATIVE_TRANSFER_SYNTAXES, VIDEO_TRANSFER_SYNTAXES
from tests.reference import EXPECTED_FAILURES, EXPECTED_SKIPS, reference_files

FILES = reference_files()
SKIPPED_TAGS = {0x7FE00001, 0x7FE00002, 0xFFFCFFFC}


def test_reference_files_are_there() -> None:
    assert len(FILES) > 130


def _bulk(archive: Path, study: str, uri: str) -> bytes:
    _, payload = multipart.unwrap((archive / "studies" / study / uri).read_bytes())
    return payload


def _swap(data: bytes, vr: str, little: bool) -> bytes:
    width = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}.get(vr, 1)
    if little or width == 1:
        return data
    usable = len(data) - len(data) % width
    return np.frombuffer(data[:usable], f">u{width}").astype(f"<u{width}").tobytes() + data[usable:]


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def _compare_element(
    elem: Any, json_elem: dict[str, Any], *, archive: Path, study: str, little: bool, where: str
) -> None:
    vr = elem.VR
    if " or " not in vr:
        assert json_elem["vr"] == vr, where
    vr = json_elem["vr"]
    if vr == "SQ":
        items = json_elem.get("Value", [])
        assert len(items) == len(elem.value), where
        for index, (item, json_item) in enumerate(zip(elem.value, items, strict=True)):
            _compare_dataset(
                item,
                json_item,
                archive=archive,
                study=study,
                little=little,
                where=f"{where}/{index}",
            )
        return
    if vr in {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}:
        value = elem.value or b""
        if isinstance(value, MultiValue | list):
            return
        expected = _swap(bytes(value), vr, little)
        if "InlineBinary" in json_elem:
            assert base64.b64decode(json_elem["InlineBinary"]) == expected, where
        elif "BulkDataURI" in json_elem:
            assert _bulk(archive, study, json_elem["BulkDataURI"]) == expected, where
        else:
            assert expected == b"", where
        return
    values = _as_list(elem.value)
    got = json_elem.get("Value", [])
    if not values or all(v in (None, "") for v in values):
        assert not got or all(v is None for v in got), where
        return
    assert len(got) == len(values), (where, got, values)
    for expected, actual in zip(values, got, strict=True):
        if vr == "PN":
            if not str(expected):
                assert actual is None, where
                continue
            pn = PersonName(expected) if not isinstance(expected, PersonName) else expected
            names = ("Alphabetic", "Ideographic", "Phonetic")
            comps = [c for c in pn.components]
            want = {names[i]: c for i, c in enumerate(comps[:3]) if c}
            assert actual == want, where
        elif vr in {"IS", "DS"}:
            if expected in (None, ""):
                assert actual is None, where
            elif isinstance(actual, str):
                assert actual == str(expected).strip(), where
            else:
                assert math.isclose(float(actual), float(expected), rel_tol=1e-12), where
        elif vr == "AT":
            assert actual == f"{int(expected):08X}", where
        elif vr in {"FL", "FD"}:
            if math.isfinite(expected):
                assert actual == pytest.approx(expected), where
            else:
                assert actual is None, where
        elif vr in {"US", "SS", "UL", "SL", "UV", "SV"}:
            assert actual == expected, where
        else:
            text = (
                str(expected).strip(" \x00")
                if vr not in {"LT", "ST", "UT", "UR"}
                else str(expected).rstrip(" \x00")
            )
            assert (actual or "") == text, (where, actual, text)


def _compare_dataset(
    ds: Dataset,
    json_ds: dict[str, Any],
    *,
    archive: Path,
    study: str,
    little: bool,
    where: str = "",
) -> None:
    for elem in ds:
        tag = int(elem.tag)
        if tag >> 16 == 0x0002 or tag & 0xFFFF == 0 or tag in SKIPPED_TAGS:
            continue
        key = f"{tag:08X}"
        assert key in json_ds, f"{where}/{key} missing"
        if tag == 0x7FE00010 and not where:
            assert (
                json_ds[key]["BulkDataURI"].endswith("/frames")
                or "bulkdata/" in json_ds[key]["BulkDataURI"]
            )
            continue
        _compare_element(
            elem, json_ds[key], archive=archive, study=study, little=little, where=f"{where}/{key}"
        )
    extra = {k for k in json_ds if int(k, 16) not in {int(e.tag) for e in ds}} - {"00083002"}
    assert not extra, f"{where}: elements not in the source: {extra}"


def _pydicom_frames(ds: Dataset, ts: str) -> list[bytes]:
    unreadable = False
    try:
        nr = int(ds.get("NumberOfFrames", 1) or 1)
    except ValueError:  # badVR.dcm: "1A"
        nr, unreadable = 1, True
    if ts in NATIVE_TRANSFER_SYNTAXES:
        total = get_expected_length(ds, "bytes")
        if not isinstance(total, int):  # an unreadable Number of Frames counts as 1
            total = ds.Rows * ds.Columns * ds.get("SamplesPerPixel", 1) * ds.BitsAllocated // 8
        data = ds.PixelData
        bits = ds.BitsAllocated
        if bits == 1:
            flat = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")
            per = ds.Rows * ds.Columns * ds.get("SamplesPerPixel", 1)
            return [
                np.packbits(flat[i * per : (i + 1) * per], bitorder="little").tobytes()
                for i in range(nr)
            ]
        if not ds.original_encoding[1]:
            width = 2 if ds["PixelData"].VR == "OW" and bits <= 8 else bits // 8
            if width > 1:
                data = (
                    np.frombuffer(data[: len(data) - len(data) % width], f">u{width}")
                    .astype(f"<u{width}")
                    .tobytes()
                )
        length = total // nr
        if unreadable:  # as many whole frames as the value holds
            nr = len(data) // length
        return [data[i * length : (i + 1) * length] for i in range(nr)]
    extended = None
    if "ExtendedOffsetTable" in ds:
        extended = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    return list(generate_frames(ds.PixelData, number_of_frames=nr, extended_offsets=extended))[:nr]


@pytest.mark.parametrize("source", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_reference_file(source: Path, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    result = Converter(archive, ConvertOptions(workers=1)).convert([str(source)])
    if source.name in EXPECTED_FAILURES:
        assert result.counts["failed"] == 1, result.to_json()
        reason = result.failures[0].reason or ""
        assert EXPECTED_FAILURES[source.name] in reason, reason
        # Nothing half-written: no instance committed.
        assert not list(archive.glob("studies/*/series/*/instances/*/metadata.gz"))
        return
    if source.name in EXPECTED_SKIPS:
        assert result.counts["skipped"] == 1, result.to_json()
        return
    assert result.ok and result.counts["converted"] == 1, result.to_json()

    data = source.read_bytes()
    if data[:2] == b"\x1f\x8b":  # zipMR.gz: a gzip-compressed file
        data = gzip.decompress(data)
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    study, series, sop = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    meta_path = archive / paths.instance_metadata(study, series, sop)
    [meta] = orjson.loads(gzip.decompress(meta_path.read_bytes()))
    info = orjson.loads(
        gzip.decompress((archive / paths.instance_info(study, series, sop)).read_bytes())
    )
    little = bool(ds.original_encoding[1])
    _compare_dataset(ds, meta, archive=archive, study=study, little=little)
    assert not any(k.startswith("0002") for k in meta)

    ts = info["transferSyntaxUID"]
    assert meta["00083002"]["Value"] == [
        ts if ts not in NATIVE_TRANSFER_SYNTAXES else "1.2.840.10008.1.2.1"
    ]
    if "PixelData" not in ds or ts in VIDEO_TRANSFER_SYNTAXES:
        return
    expected = _pydicom_frames(ds, ts)
    frames_dir = archive / paths.instance_dir(study, series, sop) / "frames"
    stored = sorted(frames_dir.iterdir(), key=lambda p: int(p.name))
    assert len(stored) == len(expected)
    for number, (frame_file, want) in enumerate(zip(stored, expected, strict=True), 1):
        headers, payload = multipart.unwrap(frame_file.read_bytes())
        assert payload == want, f"frame {number}"
        assert f"transfer-syntax={meta['00083002']['Value'][0]}" in headers["content-type"]
