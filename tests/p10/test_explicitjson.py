"""The fast path's DICOM JSON against pydicom's path, and whole archives through both.

On every reference file the fast path takes, :func:`encode_parsed` must give
what the pydicom path gives: the metadata, the file meta, the bulk data (in the
same order, same bytes), the undefined-length paths and the Pixel Data's place,
with the default bulk data thresholds and with tiny ones.  Then a sample of
reference files and a generated CT are converted through each path: every byte
of the two archives, ``.dwa/`` included, must be the same.
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pytest

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.demo.samples import write_ct_series
from dicomweb_archive.p10 import explicitjson, reader
from dicomweb_archive.p10.bulkdata import BulkPolicy
from dicomweb_archive.p10.encoded import EncodedDataset
from dicomweb_archive.p10.explicitjson import encode_parsed
from dicomweb_archive.p10.jsonmodel import encode_instance
from dicomweb_archive.p10.reader import read_instance
from tests.reference import EXPECTED_FAILURES, EXPECTED_SKIPS, reference_files

POLICIES = [BulkPolicy(), BulkPolicy(public_bulk_size=16, private_bulk_size=4)]


def _bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _taken() -> list[tuple[str, bytes]]:
    found = []
    for path in reference_files():
        data = _bytes(path)
        try:
            parsed = read_instance(io.BytesIO(data), path.name)
        except Exception:
            continue
        if parsed.scanned is not None:
            found.append((f"{path.parent.name}/{path.name}", data))
    return found


TAKEN = _taken()


def _summary(encoded: EncodedDataset) -> dict[str, object]:
    pixel = encoded.pixel_data
    return {
        "metadata": encoded.metadata,
        "file_meta": encoded.file_meta,
        "bulk_data": encoded.bulk_data,
        "undefined_length": encoded.undefined_length,
        "pixel_data": None
        if pixel is None
        else (pixel.vr, pixel.element.value_tell, pixel.element.length),
    }


def test_most_reference_files_are_taken() -> None:
    assert len(TAKEN) > 100


@pytest.mark.parametrize("policy", POLICIES, ids=["default", "tiny"])
@pytest.mark.parametrize(("name", "data"), TAKEN, ids=[name for name, _ in TAKEN])
def test_same_json_as_pydicom(name: str, data: bytes, policy: BulkPolicy) -> None:
    fast = read_instance(io.BytesIO(data), name)
    slow = read_instance(io.BytesIO(data), name, fast=False)
    assert fast.scanned is not None and slow.scanned is None
    assert _summary(encode_parsed(fast, policy)) == _summary(encode_instance(slow, policy))
    # The pydicom path over the fast path's instance (its dataset read on first use).
    assert _summary(encode_instance(fast, policy)) == _summary(encode_instance(slow, policy))


def _tree(root: Path) -> dict[str, bytes]:
    """Every file of an archive, ``.dwa/`` included, but the locks (empty, named by use)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not (folder == str(root / ".dwa") and d == "locks")]
        for name in files:
            path = Path(folder, name)
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def _sample(tmp_path: Path) -> list[str]:
    """Reference files that may share one archive (one instance per SOP Instance UID)."""
    taken = {name.split("/")[-1] for name, _ in TAKEN}
    seen: set[str] = set()
    chosen = []
    for path in reference_files():
        if path.name in {*EXPECTED_FAILURES, *EXPECTED_SKIPS} or path.suffix == ".gz":
            continue
        try:
            sop = read_instance(io.BytesIO(path.read_bytes()), path.name).sop_instance_uid
        except Exception:
            continue
        # Files of both paths: those the fast path takes and others.
        if sop not in seen and (path.name in taken or len(chosen) % 3 == 0):
            seen.add(sop)
            chosen.append(str(path))
        if len(chosen) == 40:
            break
    ct = tmp_path / "ct"
    write_ct_series(ct, slices=3, rows=32, columns=32)
    return [*chosen, str(ct)]


def test_whole_archives_are_the_same_through_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = _sample(tmp_path)
    fast = Converter(tmp_path / "fast", ConvertOptions(workers=1)).convert(inputs)
    monkeypatch.setattr(reader, "scan_file", lambda *args, **kwargs: None)
    slow = Converter(tmp_path / "pydicom", ConvertOptions(workers=1)).convert(inputs)
    assert fast.ok and slow.ok, (fast.to_json()["failures"], slow.to_json()["failures"])
    assert fast.counts == slow.counts
    assert fast.counts["converted"] >= 30
    fast_tree, slow_tree = _tree(tmp_path / "fast"), _tree(tmp_path / "pydicom")
    assert sorted(fast_tree) == sorted(slow_tree)
    assert [p for p in fast_tree if fast_tree[p] != slow_tree[p]] == []


def test_values_met_before_are_copies(tmp_path: Path) -> None:
    paths = write_ct_series(tmp_path, slices=2, rows=8, columns=8)
    first, second = (
        encode_parsed(read_instance(io.BytesIO(p.read_bytes()), p.name), BulkPolicy())
        for p in paths
    )
    name = "00100010"  # Patient Name, the same in both
    assert first.metadata[name] == second.metadata[name]
    first.metadata[name]["Value"][0]["Alphabetic"] = "Changed^Here"
    first.metadata["00080060"]["Value"].append("MR")
    assert second.metadata[name]["Value"][0]["Alphabetic"] == "Demo^CT"
    assert second.metadata["00080060"] == {"vr": "CS", "Value": ["CT"]}


def test_the_tag_keys_formatted_once_stay_bounded() -> None:
    noted = explicitjson._KEYS[True, False]
    tags = range(0x00091000, 0x00091000 + explicitjson._SEEN_LIMIT + 10)
    keys = [explicitjson._key(noted, tag, top=True, file_meta=False) for tag in tags]
    assert keys == [f"{tag:08X}" for tag in tags]
    assert len(noted) <= explicitjson._SEEN_LIMIT
    assert explicitjson._key(noted, 0x0020000D, top=True, file_meta=False) == "0020000D"
    # Left out of the JSON: "" (the file meta group, a group length, the encapsulation).
    for tag in (0x00020010, 0x00080000, 0x7FE00001):
        assert explicitjson._key(noted, tag, top=True, file_meta=False) == ""
    assert explicitjson._key(explicitjson._KEYS[False, True], 0x00020010, top=False, file_meta=True)
