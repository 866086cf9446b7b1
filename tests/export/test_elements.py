"""The dataset encoder: elements in tag order, sequences and lengths as ``dcmwrite`` writes them."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from dicomweb_archive.errors import FastPathUnsupportedError
from dicomweb_archive.export.elements import DatasetEncoder
from dicomweb_archive.export.values import DEFAULT_ENCODING

DOCUMENT: dict[str, Any] = {
    "00100020": {"vr": "LO", "Value": ["P1"]},
    "00080060": {"vr": "CS", "Value": ["CT"]},
    "00081032": {
        "vr": "SQ",
        "Value": [
            {"00080100": {"vr": "SH", "Value": ["CTCAP"]}},
            {"00080104": {"vr": "LO", "Value": ["odd"]}},
        ],
    },
    "00280010": {"vr": "US", "Value": [2]},
    "00291010": {"vr": "OB", "InlineBinary": "AAEC"},
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
}


def _no_bulk(tag: str, vr: str, uri: str) -> bytes:
    raise AssertionError("no bulk data here")


def _pydicom(implicit: bool, undefined: bool) -> bytes:
    ds = Dataset.from_json(DOCUMENT)
    if undefined:
        ds["ProcedureCodeSequence"].is_undefined_length = True
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, implicit
    write_dataset(out, ds)
    return out.getvalue()


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
@pytest.mark.parametrize("undefined", [False, True], ids=["defined", "undefined"])
def test_the_bytes_pydicom_writes(implicit: bool, undefined: bool) -> None:
    recorded = ["00081032"] if undefined else []
    out = bytearray()
    DatasetEncoder(implicit=implicit, undefined=recorded, bulk=_no_bulk).dataset(
        DOCUMENT, DEFAULT_ENCODING, "", out
    )
    assert bytes(out) == _pydicom(implicit, undefined)


def test_bulk_values_are_read_through_the_reader() -> None:
    asked: list[tuple[str, str, str]] = []

    def bulk(tag: str, vr: str, uri: str) -> bytes:
        asked.append((tag, vr, uri))
        return b"\x01\x02\x03"

    out = bytearray()
    DatasetEncoder(implicit=False, undefined=(), bulk=bulk).dataset(
        {"00291010": {"vr": "OB", "BulkDataURI": "bulkdata/x"}}, DEFAULT_ENCODING, "", out
    )
    assert asked == [("00291010", "OB", "bulkdata/x")]
    assert bytes(out) == b"\x29\x00\x10\x10OB\x00\x00\x04\x00\x00\x00\x01\x02\x03\x00"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"00020010": {"vr": "UI", "Value": ["1.2"]}}, "in the dataset"),
        ({"00100010": {"vr": "XX", "Value": ["a"]}}, "VR 'XX'"),
        ({"00100010": {"vr": "PN", "Value": ["a"], "InlineBinary": "AA=="}}, "Value and"),
        ({"00081030": {"vr": "LO", "Value": ["x" * 70000]}}, "bytes"),
        ({"0010001": {"vr": "LO", "Value": ["a"]}}, "tag"),
    ],
)
def test_what_pydicom_would_change_is_refused(document: dict[str, Any], reason: str) -> None:
    with pytest.raises(FastPathUnsupportedError, match=reason):
        DatasetEncoder(implicit=False, undefined=(), bulk=_no_bulk).dataset(
            document, DEFAULT_ENCODING, "", bytearray()
        )
