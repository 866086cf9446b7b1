"""The Basic Profile and its options applied to parsed datasets (raw elements, as converted)."""

from __future__ import annotations

import io

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from dicomweb_archive.deidentify.deidentifier import DUMMY_TEXT, Deidentifier, check_burned_in
from dicomweb_archive.deidentify.keys import PseudonymKey
from dicomweb_archive.deidentify.profile import Profile
from dicomweb_archive.errors import BurnedInAnnotationError
from dicomweb_archive.p10.reader import read_instance

KEY = PseudonymKey(b"k" * 32)
CT = "1.2.840.10008.5.1.4.1.1.2"
PIXELS = bytes(range(256)) * 2


def _source(syntax: str = ExplicitVRLittleEndian, **extra: object) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.3"
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.SourceApplicationEntityTitle = "HOSPITAL_CT7"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = "1.2.3.4.3"
    ds.StudyInstanceUID = "1.2.3.4.1"
    ds.SeriesInstanceUID = "1.2.3.4.2"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "MRN-0042"
    ds.PatientBirthDate = "19700101"
    ds.StudyDate = "20240301"
    ds.StudyTime = "101500"
    ds.AcquisitionDateTime = "20240301101700"
    ds.StudyDescription = "CT chest of Jane Doe"
    ds.InstitutionName = "St Elsewhere"
    ds.Modality = "CT"
    ds.BurnedInAnnotation = "NO"
    ref = Dataset()
    ref.ReferencedSOPClassUID = CT
    ref.ReferencedSOPInstanceUID = "1.2.3.4.9"
    ds.ReferencedImageSequence = Sequence([ref])
    item = Dataset()
    item.ValueType = "TEXT"
    item.TextValue = "Seen by Dr Who on behalf of Jane Doe"
    ds.ContentSequence = Sequence([item])
    ds.private_block(0x0009, "VENDOR", create=True).add_new(0x01, "LO", "MRN-0042")
    ds.Rows, ds.Columns, ds.BitsAllocated = 16, 16, 16
    ds.PixelData = PIXELS
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    return ds


def _parsed(ds: Dataset) -> Dataset:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return read_instance(io.BytesIO(out.getvalue()), "in.dcm").dataset


def _apply(profile: str, ds: Dataset | None = None, **kwargs: object) -> Dataset:
    parsed = _parsed(ds if ds is not None else _source())
    Deidentifier(Profile.parse(profile), KEY, **kwargs).apply(parsed, "in.dcm")  # type: ignore[arg-type]
    return parsed


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_basic_profile(syntax: str) -> None:
    ds = _apply("basic", _source(syntax))
    assert not ds.PatientName and not ds.PatientBirthDate and not ds.StudyDate
    assert "PatientName" in ds  # Z: present, empty
    assert ds.PatientID == KEY.identifier("patient", "MRN-0042")
    assert "StudyDescription" not in ds and ds.InstitutionName == DUMMY_TEXT
    assert ds.SOPInstanceUID == KEY.uid("1.2.3.4.3") == ds.file_meta.MediaStorageSOPInstanceUID
    assert ds.StudyInstanceUID == KEY.uid("1.2.3.4.1")
    assert ds.SOPClassUID == CT and ds.ReferencedImageSequence[0].ReferencedSOPClassUID == CT
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == KEY.uid("1.2.3.4.9")
    assert ds.ContentSequence[0].TextValue == DUMMY_TEXT
    assert ds.ContentSequence[0].ValueType == "TEXT"
    assert not any(t.group % 2 for t in list(ds.keys()))
    assert "SourceApplicationEntityTitle" not in ds.file_meta
    assert ds.PixelData == PIXELS
    assert ds.PatientIdentityRemoved == "YES"
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100"]
    assert ds.DeidentificationMethodCodeSequence[0].CodingSchemeDesignator == "DCM"
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"


def test_modified_dates_move_by_the_patients_shift() -> None:
    ds = _apply("basic,retain-long-modified-dates")
    days = KEY.date_shift_days("MRN-0042")
    other = _apply("basic,retain-long-modified-dates", _source(StudyDate="20240302"))
    assert other.StudyDate > ds.StudyDate  # one patient, one shift: intervals kept
    from datetime import date, timedelta

    assert ds.StudyDate == (date(2024, 3, 1) - timedelta(days=days)).strftime("%Y%m%d")
    assert ds.AcquisitionDateTime == ds.StudyDate + "101700"
    assert ds.StudyTime == "101500"
    assert ds.LongitudinalTemporalInformationModified == "MODIFIED"


def test_retained_uids_dates_and_institution() -> None:
    ds = _apply("basic,retain-uids,retain-long-full-dates,retain-institution-identity")
    assert ds.SOPInstanceUID == "1.2.3.4.3" and ds.StudyDate == "20240301"
    assert ds.InstitutionName == "St Elsewhere"
    assert ds.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == [
        "113100",
        "113110",
        "113112",
        "113106",
    ]


def test_clean_descriptors_and_structured_content() -> None:
    ds = _apply("basic,clean-descriptors,clean-structured-content")
    assert ds.StudyDescription == "CT chest of **** ***"
    assert ds.ContentSequence[0].TextValue == "Seen by Dr Who on behalf of **** ***"


def test_keep_private_by_creator() -> None:
    ds = _apply("basic", keep_private=frozenset({"VENDOR"}))
    assert ds.private_block(0x0009, "VENDOR")[0x01].value == "MRN-0042"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"BurnedInAnnotation": "YES"}, "in.dcm: Burned In Annotation .0028,0301. is YES"),
        ({"BurnedInAnnotation": "", "Modality": "US"}, "is not given and US images"),
    ],
)
def test_burned_in_annotation_is_refused_unless_allowed(
    extra: dict[str, str], message: str
) -> None:
    with pytest.raises(BurnedInAnnotationError, match=message):
        _apply("basic", _source(**extra))
    ds = _apply("basic", _source(**extra), allow_burned_in=True)
    assert ds.PixelData == PIXELS


def test_burned_in_not_checked_without_pixels() -> None:
    ds = _source(Modality="SC", BurnedInAnnotation="YES")
    del ds.PixelData
    check_burned_in(ds, "report")  # no pixels, nothing burned in
