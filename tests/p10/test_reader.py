"""read_instance: P10 files with and without preamble or file meta, every native
encoding, deflated; errors name the input and say what is wrong."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomweb_archive import uids
from dicomweb_archive.errors import (
    InvalidInputError,
    InvalidUIDError,
    MalformedDicomError,
    NotAnInstanceError,
    NotDicomError,
    TruncatedDicomError,
)
from dicomweb_archive.p10.reader import ParsedInstance, read_deferred, read_instance
from tests.conftest import write_instance


def _read(data: bytes, name: str = "input.dcm") -> ParsedInstance:
    return read_instance(io.BytesIO(data), name)


def _testdata(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()


def _instance(tmp_path: Path, **kwargs: object) -> bytes:
    path = write_instance(tmp_path, study="1.2.3", series="1.2.3.4", sop="1.2.3.4.5", **kwargs)  # type: ignore[arg-type]
    return path.read_bytes()


def test_a_p10_file(tmp_path: Path) -> None:
    data = _instance(tmp_path)
    parsed = _read(data, "ct.dcm")
    assert (parsed.name, parsed.size) == ("ct.dcm", len(data))
    assert (parsed.study_instance_uid, parsed.series_instance_uid, parsed.sop_instance_uid) == (
        "1.2.3",
        "1.2.3.4",
        "1.2.3.4.5",
    )
    assert parsed.transfer_syntax_uid == uids.ExplicitVRLittleEndian
    assert not parsed.is_implicit_vr and parsed.is_little_endian and not parsed.is_deflated
    assert parsed.file_meta is not None
    assert parsed.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert parsed.dataset.PatientName == "Doe^Jane"
    # A preamble of zeros is no preamble worth keeping.
    assert parsed.preamble is None


def test_a_preamble_is_kept(tmp_path: Path) -> None:
    data = _instance(tmp_path)
    preamble = b"TIFF" + bytes(range(124))
    parsed = _read(preamble + data[128:])
    assert parsed.preamble == preamble


@pytest.mark.parametrize(
    ("name", "syntax", "implicit", "little"),
    [
        ("MR_small_implicit.dcm", uids.ImplicitVRLittleEndian, True, True),
        ("MR_small.dcm", uids.ExplicitVRLittleEndian, False, True),
        ("MR_small_bigendian.dcm", uids.ExplicitVRBigEndian, False, False),
        ("JPEG2000.dcm", "1.2.840.10008.1.2.4.91", False, True),
    ],
)
def test_encodings(name: str, syntax: str, implicit: bool, little: bool) -> None:
    parsed = _read(_testdata(name), name)
    assert parsed.transfer_syntax_uid == syntax
    assert (parsed.is_implicit_vr, parsed.is_little_endian) == (implicit, little)
    assert parsed.dataset.SOPInstanceUID == parsed.sop_instance_uid


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("ExplVR_LitEndNoMeta.dcm", uids.ExplicitVRLittleEndian),
        ("ExplVR_BigEndNoMeta.dcm", uids.ExplicitVRBigEndian),
        ("rtstruct.dcm", uids.ImplicitVRLittleEndian),
    ],
)
def test_bare_datasets_without_preamble_or_file_meta(name: str, syntax: str) -> None:
    parsed = _read(_testdata(name), name)
    assert parsed.file_meta is None and parsed.preamble is None
    # No file meta to say it: the encoding read is the transfer syntax.
    assert parsed.transfer_syntax_uid == syntax


def test_a_file_encoded_otherwise_than_its_meta_says(tmp_path: Path) -> None:
    ds = pydicom.dcmread(io.BytesIO(_instance(tmp_path)))
    out = io.BytesIO()
    # Encoded Implicit VR while the file meta says Explicit VR Little Endian.
    pydicom.dcmwrite(out, ds, implicit_vr=True, little_endian=True, force_encoding=True)
    parsed = _read(out.getvalue())
    assert parsed.dataset.PatientName == "Doe^Jane" and parsed.dataset.Rows == 16
    # The syntax recorded and the encoding reported agree.
    assert parsed.is_implicit_vr == (parsed.transfer_syntax_uid == uids.ImplicitVRLittleEndian)


def test_deflated() -> None:
    parsed = _read(_testdata("image_dfl.dcm"), "image_dfl.dcm")
    assert parsed.is_deflated
    assert parsed.transfer_syntax_uid == uids.DeflatedExplicitVRLittleEndian
    # Inflated into memory, every value read: nothing refers to offsets of the file.
    assert len(parsed.dataset.PixelData) == 512 * 512


def test_large_values_stay_on_disk(tmp_path: Path) -> None:
    data = _instance(tmp_path, rows=512, columns=512)
    parsed = _read(data)
    item = parsed.dataset.get_item(0x7FE00010, keep_deferred=True)
    assert item.value is None
    value = read_deferred(parsed.fp, item, is_little_endian=True, file_size=parsed.size)
    assert value == pydicom.dcmread(io.BytesIO(data)).PixelData


def test_deferred_values_of_undefined_length() -> None:
    data = _testdata("JPEG2000.dcm")
    fp = io.BytesIO(data)
    ds = pydicom.dcmread(fp, defer_size=16)
    item = ds.get_item(0x7FE00010, keep_deferred=True)
    assert item.value is None and item.length == 0xFFFFFFFF
    value = read_deferred(fp, item, is_little_endian=True, file_size=len(data))
    assert value == pydicom.dcmread(io.BytesIO(data)).PixelData


def test_deferred_values_past_the_end_of_the_file(tmp_path: Path) -> None:
    data = _instance(tmp_path, rows=512, columns=512)
    # read_instance refuses the cut file itself; read_deferred checks on its own.
    item = _read(data).dataset.get_item(0x7FE00010, keep_deferred=True)
    cut = io.BytesIO(data[:-1000])
    with pytest.raises(TruncatedDicomError, match=r"\(7FE0,0010\) announces 524288 bytes at"):
        read_deferred(cut, item, is_little_endian=True, file_size=len(data) - 1000)
    with pytest.raises(TruncatedDicomError, match=r"\(7FE0,0010\) announces 524288 bytes, file"):
        read_deferred(cut, item, is_little_endian=True, file_size=None)


# -- what is refused ---------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"Name,Value\n" * 20, "not a DICOM file (no 'DICM' prefix and no dataset)"),
        (b"\x00" * 200, "not a DICOM file"),
    ],
    ids=["text", "zeros"],
)
def test_what_is_not_dicom(data: bytes, reason: str) -> None:
    with pytest.raises(NotDicomError) as raised:
        _read(data, "notes.txt")
    assert str(raised.value).startswith(f"notes.txt: {reason}")


def test_an_empty_file_is_truncated() -> None:
    # Not "not DICOM": in a folder, that would be skipped; an empty file is a failure.
    with pytest.raises(TruncatedDicomError, match=r"^empty\.dcm: empty file$"):
        _read(b"", "empty.dcm")


def test_a_bare_dataset_that_is_no_instance() -> None:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "1"
    out = io.BytesIO()
    ds.save_as(out, implicit_vr=False, little_endian=True)
    # It parses as a dataset: a failure, not a file to skip as "not DICOM".
    with pytest.raises(
        InvalidUIDError, match=r"^bare\.dcm: no 'DICM' prefix, .*no SOP Instance UID"
    ):
        _read(out.getvalue(), "bare.dcm")


def test_pydicoms_file_without_meta_or_dataset() -> None:
    with pytest.raises(NotDicomError, match=r"^no_meta\.dcm: not a DICOM file"):
        _read(_testdata("no_meta.dcm"), "no_meta.dcm")


@pytest.mark.parametrize("keep", [132, 190, 250])
def test_a_file_cut_after_its_file_meta(tmp_path: Path, keep: int) -> None:
    data = _instance(tmp_path)
    with pytest.raises(TruncatedDicomError, match=r"^cut\.dcm: .*truncated or damaged"):
        _read(data[:keep], "cut.dcm")


def test_a_deflated_file_cut_short() -> None:
    data = _testdata("image_dfl.dcm")
    with pytest.raises(MalformedDicomError, match=r"^dfl\.dcm: bad deflated data"):
        _read(data[: len(data) // 2], "dfl.dcm")


def test_a_media_directory() -> None:
    with pytest.raises(NotAnInstanceError, match=r"^DICOMDIR: a DICOMDIR \(media directory\)"):
        _read(_testdata("DICOMDIR"), "DICOMDIR")


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
def test_uids_are_required(tmp_path: Path, keyword: str) -> None:
    ds = pydicom.dcmread(io.BytesIO(_instance(tmp_path)))
    setattr(ds, keyword, "")
    out = io.BytesIO()
    ds.save_as(out)
    with pytest.raises(InvalidUIDError, match=rf"^x\.dcm: {keyword} is missing$"):
        _read(out.getvalue(), "x.dcm")


def test_uids_must_be_valid(tmp_path: Path) -> None:
    ds = pydicom.dcmread(io.BytesIO(_instance(tmp_path)))
    ds.SeriesInstanceUID = "1.2.abc"
    out = io.BytesIO()
    ds.save_as(out)
    with pytest.raises(InvalidUIDError, match=r"^x\.dcm: SeriesInstanceUID '1\.2\.abc' is not a"):
        _read(out.getvalue(), "x.dcm")


def test_a_meta_naming_no_uid(tmp_path: Path) -> None:
    data = _instance(tmp_path)
    named = uids.ExplicitVRLittleEndian.encode() + b"\x00"
    assert data.count(named) == 1
    damaged = data.replace(named, b"1.2.840.10008.x" + b"\x00" * (len(named) - 15))
    with pytest.raises(
        MalformedDicomError, match=r"^x\.dcm: transfer syntax '1\.2\.840\.10008\.x'"
    ):
        _read(damaged, "x.dcm")


def test_an_open_file_is_read_in_place(tmp_path: Path) -> None:
    path = write_instance(tmp_path, study=generate_uid(), series=generate_uid())
    with open(path, "rb") as fp:
        parsed = read_instance(fp, str(path))
        assert parsed.sop_instance_uid == path.stem
        assert parsed.fp is fp


# -- damaged lengths and VRs: the cause, with offsets, not a symptom ---------

CT_SMALL = _testdata("CT_small.dcm")
#: Explicit VR little endian element header of (0008,0016) SOP Class UID.
SOP_CLASS = b"\x08\x00\x16\x00UI"


def test_an_element_running_past_the_end_is_named_with_its_offsets() -> None:
    at = CT_SMALL.index(SOP_CLASS)
    # SOP Class UID announces 60,000 bytes: pydicom stops there, and every
    # element after it (the UIDs among them) would be "missing".
    damaged = CT_SMALL[:at] + SOP_CLASS + struct.pack("<H", 60000) + CT_SMALL[at + 8 :]
    with pytest.raises(TruncatedDicomError) as caught:
        _read(damaged, "in.dcm")
    message = str(caught.value)
    assert message.startswith(
        f"in.dcm: element (0008,0016) SOP Class UID at offset {at + 8} announces 60000 bytes"
    )
    assert f"the file ends {len(CT_SMALL) - at - 8} bytes after it" in message
    assert "missing" not in message


def test_a_file_cut_between_elements_says_where_its_data_ends() -> None:
    at = CT_SMALL.index(b"\x10\x00\x10\x00PN")  # Patient's Name, before the UIDs
    with pytest.raises(InvalidUIDError) as caught:
        _read(CT_SMALL[:at], "in.dcm")
    assert str(caught.value) == (
        "in.dcm: StudyInstanceUID is missing: the data set ends with element (0009,10E9), "
        "before (0020,000D) Study Instance UID (truncated?)"
    )


def test_a_cut_element_header_is_not_python_text() -> None:
    with pytest.raises(InvalidInputError) as caught:
        _read(CT_SMALL[: CT_SMALL.index(SOP_CLASS) + 3], "in.dcm")
    assert "(truncated?)" in str(caught.value)
    assert "unpack" not in str(caught.value) and "buffer" not in str(caught.value)


@pytest.mark.parametrize(
    ("header", "keyword"),
    [
        (b"\x20\x00\x0d\x00UI", "StudyInstanceUID"),
        (b"\x20\x00\x0e\x00UI", "SeriesInstanceUID"),
        (b"\x08\x00\x18\x00UI", "SOPInstanceUID"),
        (SOP_CLASS, "SOPClassUID"),
    ],
)
def test_a_uid_with_another_vr_is_refused(header: bytes, keyword: str) -> None:
    at = CT_SMALL.index(header)
    damaged = CT_SMALL[:at] + header[:4] + b"US" + CT_SMALL[at + 6 :]
    with pytest.raises(MalformedDicomError, match=f"{keyword} is encoded as US, not UI"):
        _read(damaged, "in.dcm")
