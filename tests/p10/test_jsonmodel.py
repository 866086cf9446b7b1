"""DICOM JSON details (PS3.18 Annex F) on hand-made datasets."""

from __future__ import annotations

import base64
import hashlib
import io
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.data import get_charset_files
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicomweb_archive.model import paths
from dicomweb_archive.p10.bulkdata import BulkPolicy
from dicomweb_archive.p10.encoded import EncodedDataset
from dicomweb_archive.p10.jsonmodel import JSONEncoder, encode_instance
from dicomweb_archive.p10.reader import read_instance


def _encode_instance(
    ds: Dataset,
    ts: str = ExplicitVRLittleEndian,
    *,
    patch: tuple[bytes, bytes] | None = None,
    **policy: int,
) -> EncodedDataset:
    ds.SOPInstanceUID = "1.2.3.4"
    ds.StudyInstanceUID = "1.2.3"
    ds.SeriesInstanceUID = "1.2.3.5"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    buffer = io.BytesIO()
    ds.save_as(
        buffer,
        enforce_file_format=True,
        little_endian=ts != ExplicitVRBigEndian,
        implicit_vr=ts == ImplicitVRLittleEndian,
    )
    if patch:
        buffer = io.BytesIO(buffer.getvalue().replace(*patch))
    return encode_instance(read_instance(buffer, "test"), BulkPolicy(**policy))


def _encode(
    ds: Dataset,
    ts: str = ExplicitVRLittleEndian,
    *,
    patch: tuple[bytes, bytes] | None = None,
    **policy: int,
) -> dict[str, Any]:
    return _encode_instance(ds, ts, patch=patch, **policy).metadata


@pytest.mark.parametrize(
    "ts", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]
)
def test_value_representations(ts: str) -> None:
    ds = Dataset()
    ds.PatientName = "Doe^Jane^^Dr"
    ds.OtherPatientNames = ["A^B", "", "C^D"]
    ds.ImageType = ["ORIGINAL", "", "AXIAL"]
    ds.SliceThickness = "2.50"
    ds.InstanceNumber = "7"
    ds.ImagePositionPatient = ["-1.5", "0", "1e2"]
    ds.PatientWeight = ""
    ds.Rows = 2
    ds.RealWorldValueFirstValueMapped = 3
    ds.FrameIncrementPointer = [0x00181063, 0x00181065]
    ds.ReferencedFrameNumber = [1, 2]
    ds.add_new(0x00189087, "FD", [1.5, -2.25])
    ds.add_new(0x00660016, "OF", b"\x00\x00\x80\x3f" * 2)
    ds.add_new(0x00409212, "FD", [0.5])
    ds.ReferencedImageSequence = Sequence([Dataset(), Dataset()])
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = "1.2.3.9"
    ds.AnatomicRegionSequence = Sequence()
    out = _encode(ds, ts)
    assert out["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane^^Dr"}]}
    assert out["00101001"]["Value"] == [{"Alphabetic": "A^B"}, None, {"Alphabetic": "C^D"}]
    assert out["00080008"]["Value"] == ["ORIGINAL", None, "AXIAL"]
    assert out["00180050"] == {"vr": "DS", "Value": [2.5]}
    assert out["00200013"] == {"vr": "IS", "Value": [7]}
    assert out["00200032"]["Value"] == [-1.5, 0.0, 100.0]
    assert out["00101030"] == {"vr": "DS"}
    assert out["00280010"] == {"vr": "US", "Value": [2]}
    assert out["00280009"] == {"vr": "AT", "Value": ["00181063", "00181065"]}
    assert out["00189087"]["Value"] == [1.5, -2.25]
    little = b"\x00\x00\x80\x3f" * 2
    expected = little if ts != ExplicitVRBigEndian else b"\x3f\x80\x00\x00" * 2
    assert base64.b64decode(out["00660016"]["InlineBinary"]) == expected
    assert out["00081140"]["Value"][0]["00081155"]["Value"] == ["1.2.3.9"]
    assert out["00081140"]["Value"][1] == {}
    assert out["00082218"] == {"vr": "SQ"}
    assert "00020010" not in out


def test_invalid_numbers_survive_as_strings() -> None:
    ds = Dataset()
    ds.add_new(0x00180050, "DS", "9.25")
    ds.add_new(0x00200013, "IS", "1.0")
    ds.add_new(0x00200012, "IS", "1.5")
    out = _encode(ds, patch=(b"9.25", b"abc "))
    assert out["00180050"]["Value"] == ["abc"]
    assert out["00200013"]["Value"] == [1]
    assert out["00200012"]["Value"] == ["1.5"]


def test_bulk_thresholds_public_and_private() -> None:
    ds = Dataset()
    ds.add_new(0x00282000, "OB", bytes(200))  # ICC profile
    block = ds.private_block(0x0009, "DWA", create=True)
    block.add_new(0x01, "OB", bytes(65))
    block.add_new(0x02, "OB", bytes(64))
    encoded = _encode_instance(ds, public_bulk_size=100)
    out = encoded.metadata
    assert out["00282000"] == {"vr": "OB", "BulkDataURI": _content_uri(bytes(200))}
    # The 65 bytes are stored padded to an even length.
    assert out["00091001"]["BulkDataURI"] == _content_uri(bytes(66))
    assert "InlineBinary" in out["00091002"]
    assert [(b.path, b.vr, b.value) for b in encoded.bulk_data] == [
        ("00091001", "OB", bytes(66)),
        ("00282000", "OB", bytes(200)),
    ]
    assert [b.uri for b in encoded.bulk_data] == [
        out["00091001"]["BulkDataURI"],
        out["00282000"]["BulkDataURI"],
    ]


def _content_uri(value: bytes) -> str:
    return paths.bulkdata_uri(hashlib.sha256(value).hexdigest())


def test_bulk_values_in_sequences_name_their_path() -> None:
    item = Dataset()
    item.add_new(0x00420011, "OB", bytes(300))
    ds = Dataset()
    ds.add_new(0x00400275, "SQ", Sequence([Dataset(), item]))
    encoded = _encode_instance(ds, public_bulk_size=100)
    [bulk] = encoded.bulk_data
    assert bulk.path == "00400275/1/00420011"
    assert encoded.metadata["00400275"]["Value"][1]["00420011"]["BulkDataURI"] == bulk.uri


def test_pixel_data_is_a_reference_to_its_frames() -> None:
    ds = Dataset()
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = 8
    ds.add_new(0x7FE00010, "OB", bytes(4))
    encoded = _encode_instance(ds)
    assert encoded.metadata["7FE00010"] == {
        "vr": "OB",
        "BulkDataURI": paths.pixel_data_uri("1.2.3.5", "1.2.3.4"),
    }
    assert encoded.pixel_data is not None
    assert encoded.pixel_data.vr == "OB"
    assert int(encoded.pixel_data.element.tag) == 0x7FE00010
    assert encoded.bulk_data == []
    assert encoded.file_meta is not None
    assert encoded.file_meta["00020010"]["Value"] == [ExplicitVRLittleEndian]


def test_without_pixel_data_there_is_no_reference() -> None:
    assert _encode_instance(Dataset()).pixel_data is None


def test_big_endian_binary_is_little_endian_in_json() -> None:
    ds = Dataset()
    # pydicom writes bytes as given: the words 0x0102 and 0x0304, big endian.
    ds.add_new(0x00283006, "OW", b"\x01\x02\x03\x04")
    out = _encode(ds, ExplicitVRBigEndian)
    assert base64.b64decode(out["00283006"]["InlineBinary"]) == b"\x02\x01\x04\x03"


@pytest.mark.parametrize(
    ("name", "ideographic"),
    [
        ("chrJapMulti.dcm", None),
        ("chrKoreanMulti.dcm", None),
        ("chrH32.dcm", "山田^太郎"),
        ("chrX1.dcm", None),
    ],
)
def test_multibyte_character_sets(name: str, ideographic: str | None) -> None:
    [path] = get_charset_files(name)
    expected = dcmread(path).PatientName
    with open(path, "rb") as fp:
        parsed = read_instance(fp, name)
        encoder = JSONEncoder(fp, is_little_endian=True, policy=BulkPolicy())
        out = encoder.encode(parsed.dataset).metadata
    name_value = out["00100010"]["Value"][0]
    assert name_value.get("Alphabetic") == (expected.alphabetic or None)
    assert name_value.get("Ideographic") == (expected.ideographic or None)
    assert name_value.get("Phonetic") == (expected.phonetic or None)
    if ideographic:
        assert name_value["Ideographic"] == ideographic


def test_private_elements_in_implicit_vr_get_their_dictionary_vr_whatever_their_size() -> None:
    ds = Dataset()
    block = ds.private_block(0x0019, "GEMS_ACQU_01", create=True)
    block.add_new(0x02, "SL", 5)  # Number of cells I in Detector
    block.add_new(0x03, "DS", "")  # Cell number at Theta: empty
    block.add_new(0x04, "DS", "\\".join(["1.5"] * 80_000))  # Cell spacing: left on disk
    meta = _encode(ds, ImplicitVRLittleEndian, private_bulk_size=1 << 30)
    assert meta["00191002"] == {"vr": "SL", "Value": [5]}
    assert meta["00191003"] == {"vr": "DS"}
    assert meta["00191004"]["vr"] == "DS" and len(meta["00191004"]["Value"]) == 80_000
