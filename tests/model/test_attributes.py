"""Attribute sets per level hold what PS3.18 and PS3.4 name, keyed by real tags."""

from __future__ import annotations

import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag

from dicomweb_archive import tags
from dicomweb_archive.errors import InvalidInputError
from dicomweb_archive.model import attributes

SETS = {
    "STUDY_LEVEL": attributes.STUDY_LEVEL,
    "SERIES_LEVEL": attributes.SERIES_LEVEL,
    "STUDY_QIDO": attributes.STUDY_QIDO,
    "SERIES_QIDO": attributes.SERIES_QIDO,
    "INSTANCE_QIDO": attributes.INSTANCE_QIDO,
}


@pytest.mark.parametrize("name", SETS)
def test_every_key_is_a_known_tag(name: str) -> None:
    for key in SETS[name]:
        assert key == key.upper() and len(key) == 8
        assert keyword_for_tag(int(key, 16)), f"{name}: {key} is not in the data dictionary"


def test_keywords_name_the_study_and_series_attributes() -> None:
    assert set(attributes.KEYWORDS) == attributes.STUDY_LEVEL | attributes.SERIES_LEVEL
    for key, keyword in attributes.KEYWORDS.items():
        assert keyword_for_tag(int(key, 16)) == keyword


def test_study_and_series_levels_are_apart() -> None:
    assert not attributes.STUDY_LEVEL & attributes.SERIES_LEVEL
    # The Patient and Study modules; no series or instance attribute among them.
    assert tags.PatientName in attributes.STUDY_LEVEL
    assert tags.Modality in attributes.SERIES_LEVEL
    assert tags.SOPInstanceUID not in attributes.STUDY_LEVEL | attributes.SERIES_LEVEL


def test_study_rows_hold_the_default_study_attributes() -> None:
    # PS3.18 Table 10.6.3-3, less what is computed for the row (counts,
    # Modalities in Study, Retrieve URL, Instance Availability).
    assert {
        tags.StudyDate,
        tags.StudyTime,
        tags.AccessionNumber,
        tags.ReferringPhysicianName,
        tags.TimezoneOffsetFromUTC,
        tags.PatientName,
        tags.PatientID,
        tags.PatientBirthDate,
        tags.PatientSex,
        tags.StudyInstanceUID,
        tags.StudyID,
        tags.StudyDescription,
        tags.SpecificCharacterSet,
    } <= attributes.STUDY_QIDO
    assert tags.IssuerOfPatientID not in attributes.STUDY_QIDO
    assert tags.PatientBirthTime not in attributes.STUDY_QIDO


def test_series_rows_hold_the_default_series_attributes() -> None:
    # PS3.18 Table 10.6.3-4, and the request attributes OHIF lists series by.
    assert {
        tags.Modality,
        tags.TimezoneOffsetFromUTC,
        tags.SeriesDescription,
        tags.SeriesInstanceUID,
        tags.SeriesNumber,
        tags.PerformedProcedureStepStartDate,
        tags.PerformedProcedureStepStartTime,
        tags.RequestAttributesSequence,
        tags.StudyInstanceUID,
    } <= attributes.SERIES_QIDO
    assert attributes.SERIES_LEVEL <= attributes.SERIES_QIDO
    assert dictionary_VR(int(tags.RequestAttributesSequence, 16)) == "SQ"


def test_instance_rows_hold_the_default_instance_attributes() -> None:
    # PS3.18 Table 10.6.3-5, less Retrieve URL and Instance Availability.
    assert {
        tags.SOPClassUID,
        tags.SOPInstanceUID,
        tags.TimezoneOffsetFromUTC,
        tags.InstanceNumber,
        tags.Rows,
        tags.Columns,
        tags.BitsAllocated,
        tags.NumberOfFrames,
        tags.StudyInstanceUID,
        tags.SeriesInstanceUID,
    } <= attributes.INSTANCE_QIDO
    assert not attributes.INSTANCE_QIDO & (attributes.STUDY_LEVEL - {tags.StudyInstanceUID})


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("PatientName", ("00100010", "PN")),
        ("00180060", ("00180060", "DS")),
        ("0018006a", ("0018006A", "UN")),
        ("00091010", ("00091010", "UN")),
        ("PixelData", ("7FE00010", "OB")),
    ],
)
def test_attribute_tag(key: str, expected: tuple[str, str]) -> None:
    assert attributes.attribute_tag(key) == expected


@pytest.mark.parametrize("key", ["", "Nope", "0018006", "0x00180060", "(0018,0060)"])
def test_attribute_tag_refuses(key: str) -> None:
    with pytest.raises(InvalidInputError):
        attributes.attribute_tag(key)
