"""The fast path's reading against pydicom's, element by element, on every reference file.

Where the fast path takes a file, pydicom must read it too, the instance must be
the same (transfer syntax, encoding, preamble, UIDs) and every element the same:
tag, VR, value bytes, sequences item by item with their undefined lengths, the
Pixel Data's place in the file.  Where pydicom refuses a file, the fast path
must decline it.  Every Explicit VR Little Endian file the converter takes must
be taken (those whose file meta names it), except those named here with why.
"""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from dicomweb_archive import uids
from dicomweb_archive.demo.samples import write_ct_series
from dicomweb_archive.p10.explicit import (
    LONG_LENGTH_VRS,
    PIXEL_DATA,
    SHORT_LENGTH_VRS,
    Element,
    ScannedFile,
    SequenceValue,
    scan_file,
)
from dicomweb_archive.p10.reader import DEFER_SIZE, read_instance
from tests.conftest import write_instance
from tests.reference import reference_files

#: Explicit VR Little Endian reference files the converter takes but the fast path
#: leaves to pydicom, with why.
DECLINED = {
    # A private element encoded as UN: pydicom reads it as its dictionary's VR.
    "chrJapMulti.dcm": "UN",
    "chrJapMultiExplicitIR6.dcm": "UN",
    "chrKoreanMulti.dcm": "UN",
}


def _bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _scan(data: bytes) -> ScannedFile | None:
    return scan_file(io.BytesIO(data), len(data), defer_size=DEFER_SIZE)


def _same_elements(ours: list[Element], theirs: Dataset, *, top: bool) -> None:
    """``ours`` are pydicom's elements of ``theirs``: tags, VRs, values, items."""
    tags = [int(tag) for tag in theirs.keys()]  # noqa: SIM118 (a Dataset iterates elements)
    assert [e.tag for e in ours] == [t for t in tags if not (top and t == PIXEL_DATA)]
    for element in ours:
        raw = theirs.get_item(element.tag)
        assert element.vr == raw.VR, f"{element.tag:08X}"
        if isinstance(element.value, SequenceValue):
            _same_sequence(element.value, theirs[element.tag])
        elif isinstance(raw, RawDataElement):
            assert element.value == (raw.value or b""), f"{element.tag:08X}"
        else:  # pydicom converted it already: convert ours alike
            mine = RawDataElement(
                BaseTag(element.tag), element.vr, len(element.value), element.value, 0, False, True
            )
            converted = convert_raw_data_element(mine, encoding=theirs._character_set, ds=theirs)
            assert converted.value == raw.value, f"{element.tag:08X}"


def _same_sequence(ours: SequenceValue, theirs: DataElement) -> None:
    assert isinstance(theirs.value, Sequence)
    assert ours.undefined_length == theirs.is_undefined_length
    assert len(ours.items) == len(theirs.value)
    for item, their_item in zip(ours.items, theirs.value, strict=True):
        assert item.undefined_length == their_item.is_undefined_length_sequence_item
        _same_elements(item.elements, their_item, top=False)


def _check_against_pydicom(data: bytes, name: str) -> ScannedFile | None:
    """The fast path's reading of ``data``, checked against pydicom's."""
    scanned = _scan(data)
    try:
        slow = read_instance(io.BytesIO(data), name, fast=False)
    except Exception:
        assert scanned is None, "the fast path took a file the reader refuses"
        return None
    if scanned is None:
        return None
    fast = read_instance(io.BytesIO(data), name)
    assert fast.scanned == scanned
    for field in (
        "transfer_syntax_uid",
        "is_implicit_vr",
        "is_little_endian",
        "preamble",
        "study_instance_uid",
        "series_instance_uid",
        "sop_instance_uid",
        "size",
    ):
        assert getattr(fast, field) == getattr(slow, field), field
    assert fast.sop_class_uid == slow.sop_class_uid
    assert fast.pydicom is None  # nothing above needed pydicom's reading
    ds = pydicom.dcmread(io.BytesIO(data), defer_size=1)  # Pixel Data stays raw
    assert slow.file_meta is not None
    _same_elements(scanned.file_meta, ds.file_meta, top=False)
    _same_elements(scanned.elements, ds, top=True)
    pixel = ds.get_item(PIXEL_DATA, keep_deferred=True) if PIXEL_DATA in ds else None
    if scanned.pixel_data is None:
        assert pixel is None
    else:
        assert isinstance(pixel, RawDataElement)
        assert (scanned.pixel_data.vr, scanned.pixel_data.offset, scanned.pixel_data.length) == (
            pixel.VR,
            pixel.value_tell,
            pixel.length,
        )
    return scanned


FILES = reference_files()


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_reference_file_as_pydicom_reads_it(path: Path) -> None:
    data = _bytes(path)
    scanned = _check_against_pydicom(data, path.name)
    if scanned is not None or path.name in DECLINED:
        assert scanned is None or path.name not in DECLINED
        return
    try:
        parsed = read_instance(io.BytesIO(data), path.name, fast=False)
    except Exception:
        return  # refused by the reader: left to pydicom, which says why
    # Every instance whose file meta names Explicit VR Little Endian is taken,
    # other syntaxes never (nor a dataset without file meta).
    meta = parsed.file_meta
    named = str(meta.get("TransferSyntaxUID", "")).strip("\x00 ") if meta is not None else ""
    assert named != uids.ExplicitVRLittleEndian


def test_length_vrs_are_pydicoms() -> None:
    """The fast path's own tables of VRs by length size, and pydicom's."""
    from pydicom.valuerep import EXPLICIT_VR_LENGTH_16, EXPLICIT_VR_LENGTH_32

    assert {str(vr) for vr in EXPLICIT_VR_LENGTH_16} == SHORT_LENGTH_VRS
    assert {str(vr) for vr in EXPLICIT_VR_LENGTH_32} == LONG_LENGTH_VRS


def test_the_generated_ct(tmp_path: Path) -> None:
    for path in write_ct_series(tmp_path, slices=2, rows=32, columns=32):
        assert _check_against_pydicom(path.read_bytes(), path.name) is not None


def _file(tmp_path: Path, change: object = None) -> bytes:
    path = write_instance(tmp_path, study="1.2.3", series="1.2.3.4", sop="1.2.3.4.5")
    ds = pydicom.dcmread(path)
    if callable(change):
        change(ds)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _sequence(undefined: bool, undefined_items: bool) -> object:
    def change(ds: Dataset) -> None:
        inner = Dataset()
        inner.CodeValue = "T-D3000"
        inner.CodeMeaning = "Chest"
        item = Dataset()
        item.CodeValue = "X"
        item.CodingSchemeDesignator = "99"
        item.PurposeOfReferenceCodeSequence = Sequence([inner, Dataset()])
        ds.ProcedureCodeSequence = Sequence([item, Dataset()])
        ds.ReferencedImageSequence = Sequence()
        for name in ("ProcedureCodeSequence", "ReferencedImageSequence"):
            ds[name].is_undefined_length = undefined
        for each in (item, inner):
            each.is_undefined_length_sequence_item = undefined_items

    return change


@pytest.mark.parametrize("undefined", [False, True])
@pytest.mark.parametrize("undefined_items", [False, True])
def test_sequences_of_every_length_encoding(
    tmp_path: Path, undefined: bool, undefined_items: bool
) -> None:
    data = _file(tmp_path, _sequence(undefined, undefined_items))
    scanned = _check_against_pydicom(data, "sq.dcm")
    assert scanned is not None
    sequence = next(e for e in scanned.elements if e.tag == 0x00081032).value
    assert isinstance(sequence, SequenceValue)
    assert sequence.undefined_length == undefined
    assert [item.undefined_length for item in sequence.items] == [undefined_items, False]


def _replace(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1
    return data.replace(old, new)


def test_what_is_left_to_pydicom(tmp_path: Path) -> None:
    data = _file(tmp_path)
    assert _scan(data) is not None
    modality = b"\x08\x00\x60\x00CS\x02\x00CT"
    declined = {
        # Another transfer syntax (here Implicit VR Little Endian named in the meta).
        "syntax": _replace(data, b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2\x00\x00\x00"),
        # UN: pydicom reads it as the dictionary's VR.
        "UN": _replace(data, modality, b"\x08\x00\x60\x00UN\x00\x00\x02\x00\x00\x00CT"),
        # An unknown VR.
        "VR": _replace(data, modality, b"\x08\x00\x60\x00QQ\x02\x00CT"),
        # No DICM prefix.
        "prefix": data[:128] + b"DICN" + data[132:],
        # Cut inside an element: pydicom says where.
        "truncated": data[:-10],
        # Bytes after the last element that pydicom would drop.
        "trailing": data + b"\x00\x00\x00",
        # Elements out of order (Modality moved after the Study Instance UID).
        "order": _replace(data, modality, b"") + b"\x08\x00\x60\x00CS\x02\x00CT",
    }
    for what, changed in declined.items():
        assert _scan(changed) is None, what
        _check_against_pydicom(changed, what)


def _character_sets(ds: Dataset) -> None:
    ds.SpecificCharacterSet = "ISO_IR 192"
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 100"
    item.CodeMeaning = "Brust"
    ds.ProcedureCodeSequence = Sequence([item])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"ISO_IR 192", b"IS\x00\x00IR 192"),  # pydicom's look-up of the name fails
        (b"ISO_IR 192", b"ISO_IR 19\x00"),
        (b"ISO_IR 100", b"ISO_IR\x00100"),  # an item's own
        # Another VR than CS: pydicom converts the value by it (SS: a number, then fails).
        (b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 192", b"\x08\x00\x05\x00SS\x0a\x00ISO_IR 192"),
        (b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100", b"\x08\x00\x05\x00LO\x0a\x00ISO_IR 100"),
    ],
)
def test_a_character_set_pydicom_cannot_read_is_left(
    tmp_path: Path, old: bytes, new: bytes
) -> None:
    data = _file(tmp_path, _character_sets)
    assert _scan(data) is not None
    changed = _replace(data, old, new)
    assert _scan(changed) is None
    _check_against_pydicom(changed, "character-set.dcm")


def test_undefined_length_values_other_than_sequences_are_left(tmp_path: Path) -> None:
    def change(ds: Dataset) -> None:
        ds.add_new(0x00091010, "OB", b"\x01\x02")
        ds.add_new(0x00090010, "LO", "PRIVATE")

    data = _file(tmp_path, change)
    header = struct.pack("<HH2sHL", 0x0009, 0x1010, b"OB", 0, 2)
    undefined = struct.pack("<HH2sHL", 0x0009, 0x1010, b"OB", 0, 0xFFFFFFFF)
    delimiter = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    changed = _replace(data, header + b"\x01\x02", undefined + b"\x01\x02" + delimiter)
    assert _scan(data) is not None
    assert _scan(changed) is None


def test_a_sequence_ending_inside_its_item_is_left(tmp_path: Path) -> None:
    data = _file(tmp_path, _sequence(undefined=False, undefined_items=False))
    scanned = _scan(data)
    assert scanned is not None
    at = data.index(b"\x08\x00\x32\x10SQ")
    (length,) = struct.unpack_from("<L", data, at + 8)
    changed = data[: at + 8] + struct.pack("<L", length - 2) + data[at + 12 :]
    assert _scan(changed) is None
    _check_against_pydicom(changed, "short-sequence.dcm")


def test_large_values_are_read_past_the_first_chunk(tmp_path: Path) -> None:
    def change(ds: Dataset) -> None:
        ds.add_new(0x00090010, "LO", "PRIVATE")
        ds.add_new(0x00091010, "OB", bytes(range(256)) * 2000)  # 512 KB, past DEFER_SIZE

    data = _file(tmp_path, change)
    scanned = _check_against_pydicom(data, "large.dcm")
    assert scanned is not None
    value = next(e.value for e in scanned.elements if e.tag == 0x00091010)
    assert value == bytes(range(256)) * 2000
