"""Which attributes a correction may set, and their values as DICOM JSON."""

from __future__ import annotations

import pytest

from dicomweb_archive.errors import InvalidInputError
from dicomweb_archive.model.corrections import Correction, apply_corrections, parse_assignment


def test_values_as_dicom_json() -> None:
    assert parse_assignment("PatientName=Doe^John").element() == {
        "vr": "PN",
        "Value": [{"Alphabetic": "Doe^John"}],
    }
    assert parse_assignment("PatientID= 12=3 ").element() == {"vr": "LO", "Value": [" 12=3 "]}
    assert parse_assignment("SeriesNumber=7").element() == {"vr": "IS", "Value": [7]}
    assert parse_assignment("PatientWeight=70.5").element() == {"vr": "DS", "Value": [70.5]}
    assert parse_assignment("PatientSize=2").element() == {"vr": "DS", "Value": [2]}
    assert parse_assignment("OtherPatientNames=A^B\\C").element() == {
        "vr": "PN",
        "Value": [{"Alphabetic": "A^B"}, {"Alphabetic": "C"}],
    }
    assert parse_assignment("PatientComments=a\\b").element() == {"vr": "LT", "Value": ["a\\b"]}
    assert parse_assignment("AccessionNumber=").element() == {"vr": "SH"}
    correction = parse_assignment("StudyDate=20250101")
    assert Correction.from_json(correction.to_json()) == correction


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("SOPInstanceUID=1.2.3", "identifies the instance"),
        ("StudyInstanceUID=1.2.3", "identifies the instance"),
        ("Rows=12", "describes the pixel data"),
        ("PixelData=x", "describes the pixel data"),
        ("ImageType=ORIGINAL", "not a patient, study or series attribute"),
        ("Nonsense=1", "not a patient, study or series attribute"),
        ("PatientName", "expected Keyword=value"),
        ("=x", "expected Keyword=value"),
        ("StudyDate=2025", "not a valid DA value"),
        ("SeriesNumber=one", "not a valid IS value"),
        ("PatientAge=40", "not a valid AS value"),
    ],
)
def test_refusals_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason):
        parse_assignment(text)


def test_applying_twice_changes_nothing() -> None:
    dataset = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Old"}]}}
    corrections = [parse_assignment("PatientName=New"), parse_assignment("PatientID=9")]
    changes = apply_corrections(dataset, corrections)
    assert changes == [
        {
            "tag": "00100010",
            "keyword": "PatientName",
            "old": {"vr": "PN", "Value": [{"Alphabetic": "Old"}]},
            "new": {"vr": "PN", "Value": [{"Alphabetic": "New"}]},
        },
        {
            "tag": "00100020",
            "keyword": "PatientID",
            "old": None,
            "new": {"vr": "LO", "Value": ["9"]},
        },
    ]
    assert apply_corrections(dataset, corrections) == []
