"""Attribute sets per query/retrieve level (PS3.18 10.6.3.3, PS3.4 C.6)."""

from __future__ import annotations

from typing import Final

from dicomweb_archive import tags

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
