"""The HTJ2K record of an instance: image pixel description, source digest, the
documents of a primary transcoding, and what a new conversion does to the record."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dicomweb_archive import tags, uids
from dicomweb_archive.model import transcoded
from dicomweb_archive.model.transcoded import (
    RECORD,
    Reconversion,
    SourceDigest,
    image_pixel,
    primary_documents,
    record_of,
    values,
)
from dicomweb_archive.types import JSONDataset


def _meta(samples: int = 3, photometric: str = "RGB") -> JSONDataset:
    return {
        tags.SOPInstanceUID: {"vr": "UI", "Value": ["1.2.3"]},
        tags.SamplesPerPixel: {"vr": "US", "Value": [samples]},
        tags.PhotometricInterpretation: {"vr": "CS", "Value": [photometric]},
        tags.PlanarConfiguration: {"vr": "US", "Value": [1]},
        tags.NumberOfFrames: {"vr": "IS", "Value": [2]},
        tags.Rows: {"vr": "US", "Value": [4]},
        tags.Columns: {"vr": "US", "Value": [5]},
        tags.BitsAllocated: {"vr": "US", "Value": [8]},
        tags.BitsStored: {"vr": "US", "Value": [8]},
        tags.PixelRepresentation: {"vr": "US", "Value": [0]},
        tags.AvailableTransferSyntaxUID: {"vr": "UI", "Value": [uids.ExplicitVRLittleEndian]},
        tags.PixelData: {"vr": "OW", "BulkDataURI": "frames"},
    }


def _info() -> dict[str, Any]:
    return {
        "transferSyntaxUID": uids.ExplicitVRBigEndian,
        "encoding": {"implicitVR": False, "littleEndian": False, "deflated": False},
        "pixelData": {"encapsulated": False, "numberOfFrames": 2, "vr": "OW"},
        "preamble": None,
    }


def _record(lossy: bool = False) -> dict[str, Any]:
    return {
        "mode": transcoded.PRIMARY,
        "path": "frames",
        "transferSyntaxUID": uids.HTJ2K if lossy else uids.HTJ2KLosslessRPCL,
        "mediaType": "image/jphc",
        "photometricInterpretation": "YBR_ICT" if lossy else "YBR_RCT",
        "lossy": lossy,
        "psnr": 45.0 if lossy else None,
        "lossyImageCompressionRatio": 12.5 if lossy else None,
        "lossyImageCompressionMethod": "ISO_15444_15" if lossy else None,
        "numberOfFrames": 2,
        "bytes": 100,
        "encoder": "openjph",
        "source": {
            "transferSyntaxUID": uids.ExplicitVRBigEndian,
            "photometricInterpretation": "RGB",
            "lossyImageCompressionRatio": [3.0],
            "lossyImageCompressionMethod": ["ISO_10918_1"],
        },
    }


def test_values() -> None:
    meta = _meta()
    assert values(meta, tags.Rows) == [4]
    assert values(meta, tags.PatientName) == []
    assert values({tags.Rows: {"vr": "US"}}, tags.Rows) == []
    # A copy: changing it leaves the dataset alone.
    values(meta, tags.Rows).append(9)
    assert meta[tags.Rows]["Value"] == [4]


def test_image_pixel_is_the_description_an_encoding_depends_on() -> None:
    described = image_pixel(_meta())
    assert described == {
        tags.SamplesPerPixel: [3],
        tags.PhotometricInterpretation: ["RGB"],
        tags.PlanarConfiguration: [1],
        tags.NumberOfFrames: [2],
        tags.Rows: [4],
        tags.Columns: [5],
        tags.BitsAllocated: [8],
        tags.BitsStored: [8],
        tags.PixelRepresentation: [0],
    }
    assert image_pixel({})[tags.Rows] == []


def _digest(meta: JSONDataset, frames: list[bytes]) -> str:
    digest = SourceDigest(meta)
    for frame in frames:
        digest.update(frame)
    return digest.hexdigest()


def test_source_digest() -> None:
    frames = [b"one", b"two"]
    digest = _digest(_meta(), frames)
    assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    assert _digest(_meta(), frames) == digest
    # Other attributes than the image pixel ones do not count.
    other = _meta()
    other[tags.SOPInstanceUID] = {"vr": "UI", "Value": ["9.9"]}
    assert _digest(other, frames) == digest
    # Frames, their order and where one ends count; so does the description.
    assert _digest(_meta(), [b"two", b"one"]) != digest
    assert _digest(_meta(), [b"on", b"etwo"]) != digest
    assert _digest(_meta(), [b"onetwo"]) != digest
    assert _digest(_meta(photometric="YBR_FULL"), frames) != digest


@pytest.mark.parametrize(
    ("info", "found"),
    [
        (None, False),
        ({}, False),
        ({"htj2k": None}, False),
        ({"htj2k": "primary"}, False),
        ({"htj2k": {"path": "htj2k"}}, False),
        ({"htj2k": {"mode": "alternate", "path": "htj2k"}}, True),
    ],
)
def test_record_of(info: dict[str, Any] | None, found: bool) -> None:
    record = record_of(info)
    assert (record is not None) == found
    if found:
        assert info is not None and record is info[transcoded.RECORD]


def test_primary_documents_lossless() -> None:
    meta, info, record = _meta(), _info(), _record()
    before = copy.deepcopy((meta, info))
    new_meta, new_info = primary_documents(meta, info, record)
    assert (meta, info) == before  # the arguments are left alone
    assert new_meta[tags.AvailableTransferSyntaxUID]["Value"] == [uids.HTJ2KLosslessRPCL]
    assert new_meta[tags.PhotometricInterpretation] == {"vr": "CS", "Value": ["YBR_RCT"]}
    # Colour by pixel for the JPEG 2000 family (PS3.5 Table 8.2.4-1).
    assert new_meta[tags.PlanarConfiguration] == {"vr": "US", "Value": [0]}
    assert new_meta[tags.PixelData] == {"vr": "OB", "BulkDataURI": "frames"}
    assert tags.LossyImageCompression not in new_meta
    assert new_info["transferSyntaxUID"] == uids.HTJ2KLosslessRPCL
    assert new_info["encoding"] == {"implicitVR": False, "littleEndian": True, "deflated": False}
    assert new_info["pixelData"] == {
        "encapsulated": True,
        "numberOfFrames": 2,
        "vr": "OB",
        "undefinedLength": True,
        "basicOffsetTable": True,
        "extendedOffsetTable": False,
        "fragments": [],
    }
    assert new_info[transcoded.RECORD] is record
    assert new_info["preamble"] is None  # what the record does not set stays


def test_primary_documents_lossy_keep_the_source_history() -> None:
    new_meta, _ = primary_documents(_meta(), _info(), _record(lossy=True))
    assert new_meta[tags.LossyImageCompression] == {"vr": "CS", "Value": ["01"]}
    assert new_meta[tags.LossyImageCompressionRatio] == {"vr": "DS", "Value": [3.0, 12.5]}
    assert new_meta[tags.LossyImageCompressionMethod] == {
        "vr": "CS",
        "Value": ["ISO_10918_1", "ISO_15444_15"],
    }


def test_primary_documents_are_the_same_applied_twice() -> None:
    record = _record(lossy=True)
    once = primary_documents(_meta(), _info(), record)
    twice = primary_documents(*once, record)
    assert twice == once


def test_monochrome_gets_no_planar_configuration() -> None:
    meta = _meta(samples=1, photometric="MONOCHROME2")
    del meta[tags.PlanarConfiguration]
    record = {**_record(), "photometricInterpretation": "MONOCHROME2"}
    new_meta, _ = primary_documents(meta, _info(), record)
    assert tags.PlanarConfiguration not in new_meta
    assert new_meta[tags.PhotometricInterpretation]["Value"] == ["MONOCHROME2"]


# -- an instance converted again ------------------------------------------------

_EIGHT_ROWS = {"vr": "US", "Value": [8]}

_RECONVERTED: dict[str, Any] = {
    "00280002": {"vr": "US", "Value": [1]},
    "00280004": {"vr": "CS", "Value": ["MONOCHROME2"]},
    "00280010": {"vr": "US", "Value": [16]},
    "00280011": {"vr": "US", "Value": [16]},
    "00280100": {"vr": "US", "Value": [16]},
    "7FE00010": {"vr": "OW", "BulkDataURI": "frames"},
}


def _earlier_record(mode: str, **source: Any) -> dict[str, Any]:
    return {
        "mode": mode,
        "transferSyntaxUID": "1.2.840.10008.1.2.4.202",
        "photometricInterpretation": "MONOCHROME2",
        "lossy": False,
        "numberOfFrames": 1,
        "source": {"digest": "sha256:abc", "imagePixel": image_pixel(_RECONVERTED), **source},
    }


def test_without_a_record_nothing_changes() -> None:
    reconversion = Reconversion(None, staged=False)
    assert reconversion.replaced_digest is None
    meta, info, drop = reconversion.documents(
        dict(_RECONVERTED), {}, frames_kept=False, frames_changed=True
    )
    assert (meta, info, drop) == (_RECONVERTED, {}, False)


def test_a_staged_folder_without_a_record_goes_when_the_frames_change() -> None:
    reconversion = Reconversion(None, staged=True)
    meta = _RECONVERTED
    assert reconversion.documents(dict(meta), {}, frames_kept=False, frames_changed=True)[2]
    assert not reconversion.documents(dict(meta), {}, frames_kept=False, frames_changed=False)[2]


def test_a_primary_record_names_the_frames_it_replaced() -> None:
    assert Reconversion(_earlier_record("primary"), staged=False).replaced_digest == "sha256:abc"
    # Staged: an interrupted primary run, whose frames are not all in place.
    assert Reconversion(_earlier_record("primary"), staged=True).replaced_digest is None
    assert Reconversion(_earlier_record("alternate"), staged=False).replaced_digest is None


def test_kept_frames_keep_the_primary_documents() -> None:
    record = _earlier_record("primary")
    meta, info, drop = Reconversion(record, staged=False).documents(
        dict(_RECONVERTED), {}, frames_kept=True, frames_changed=False
    )
    assert not drop
    assert (meta, info) == primary_documents(_RECONVERTED, {}, record)
    assert info[RECORD] == record


def test_an_alternate_stays_while_its_frames_do() -> None:
    record = _earlier_record("alternate")
    meta, info, drop = Reconversion(record, staged=True).documents(
        dict(_RECONVERTED), {}, frames_kept=False, frames_changed=False
    )
    assert (meta, info[RECORD], drop) == (_RECONVERTED, record, False)


@pytest.mark.parametrize(
    ("record", "frames_changed", "meta"),
    [
        (_earlier_record("alternate"), True, _RECONVERTED),
        (_earlier_record("alternate"), False, {**_RECONVERTED, "00280010": _EIGHT_ROWS}),
        (_earlier_record("primary"), False, _RECONVERTED),  # the frames are not those it replaced
    ],
)
def test_a_record_of_other_frames_goes(
    record: dict[str, Any], frames_changed: bool, meta: dict[str, Any]
) -> None:
    _, info, drop = Reconversion(record, staged=True).documents(
        dict(meta), {}, frames_kept=False, frames_changed=frames_changed
    )
    assert drop
    assert RECORD not in info
