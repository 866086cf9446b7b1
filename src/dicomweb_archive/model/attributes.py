"""Attribute sets per query/retrieve level (PS3.18 10.6.3.3, PS3.4 C.6), and
attributes named by keyword or tag."""

from __future__ import annotations

from typing import Final

from dicomweb_archive import tags
from dicomweb_archive.model.matching import InvalidQueryError

#: Patient and study attributes: the same in every instance of a study.
STUDY_LEVEL: Final = frozenset(
    {
        tags.StudyDate,
        tags.StudyTime,
        tags.AccessionNumber,
        tags.ReferringPhysicianName,
        tags.StudyDescription,
        tags.PatientName,
        tags.PatientID,
        tags.IssuerOfPatientID,
        tags.PatientBirthDate,
        tags.PatientBirthTime,
        tags.PatientSex,
        tags.StudyInstanceUID,
        tags.StudyID,
    }
)

#: Series attributes: the same in every instance of a series.
SERIES_LEVEL: Final = frozenset(
    {
        tags.SeriesDate,
        tags.SeriesTime,
        tags.Modality,
        tags.SeriesDescription,
        tags.SeriesInstanceUID,
        tags.SeriesNumber,
    }
)

#: Default attributes of a study row, plus those OHIF asks for (R1).
STUDY_QIDO: Final = (
    STUDY_LEVEL
    | {
        tags.SpecificCharacterSet,
        tags.TimezoneOffsetFromUTC,
    }
) - {tags.IssuerOfPatientID, tags.PatientBirthTime}

#: Default attributes of a series row, plus those OHIF asks for (R2, R3).
SERIES_QIDO: Final = SERIES_LEVEL | {
    tags.SpecificCharacterSet,
    tags.TimezoneOffsetFromUTC,
    tags.StudyInstanceUID,
    tags.PerformedProcedureStepStartDate,
    tags.PerformedProcedureStepStartTime,
    tags.RequestAttributesSequence,
}

#: Default attributes of an instance row (PS3.18 Table 10.6.3-5).
INSTANCE_QIDO: Final = frozenset(
    {
        tags.SpecificCharacterSet,
        tags.SOPClassUID,
        tags.SOPInstanceUID,
        tags.TimezoneOffsetFromUTC,
        tags.StudyInstanceUID,
        tags.SeriesInstanceUID,
        tags.InstanceNumber,
        tags.NumberOfFrames,
        tags.Rows,
        tags.Columns,
        tags.BitsAllocated,
    }
)


KEYWORDS: Final = {
    tags.StudyDate: "StudyDate",
    tags.StudyTime: "StudyTime",
    tags.AccessionNumber: "AccessionNumber",
    tags.ReferringPhysicianName: "ReferringPhysicianName",
    tags.StudyDescription: "StudyDescription",
    tags.PatientName: "PatientName",
    tags.PatientID: "PatientID",
    tags.IssuerOfPatientID: "IssuerOfPatientID",
    tags.PatientBirthDate: "PatientBirthDate",
    tags.PatientBirthTime: "PatientBirthTime",
    tags.PatientSex: "PatientSex",
    tags.StudyInstanceUID: "StudyInstanceUID",
    tags.StudyID: "StudyID",
    tags.SeriesDate: "SeriesDate",
    tags.SeriesTime: "SeriesTime",
    tags.Modality: "Modality",
    tags.SeriesDescription: "SeriesDescription",
    tags.SeriesInstanceUID: "SeriesInstanceUID",
    tags.SeriesNumber: "SeriesNumber",
}


def attribute_tag(key: str) -> tuple[str, str]:
    """The 8-hex tag and VR of one attribute named by keyword (``PatientName``) or tag.

    Raises :class:`~dicomweb_archive.model.matching.InvalidQueryError` (invalid
    input) for anything else.
    """
    # pydicom's dictionary, imported only here: the documents of a study
    # (this module's tables) need none of pydicom, nor its start-up.
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    if not key:
        raise InvalidQueryError("an attribute name is empty")
    upper = key.upper()
    if len(upper) == 8 and all(c in "0123456789ABCDEF" for c in upper):
        tag = int(upper, 16)
    else:
        found = tag_for_keyword(key)
        if found is None:
            raise InvalidQueryError(f"{key!r} is neither an attribute keyword nor a tag")
        tag = found
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        vr = "UN"
    return f"{tag:08X}", vr.split(" or ")[0]
