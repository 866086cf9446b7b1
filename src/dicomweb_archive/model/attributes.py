"""Attribute sets per query/retrieve level (PS3.18 10.6.3.3, PS3.4 C.6)."""

from __future__ import annotations

from typing import Final

#: Patient and study attributes: the same in every instance of a study.
STUDY_LEVEL: Final = frozenset(
    {
        "00080020",  # StudyDate
        "00080030",  # StudyTime
        "00080050",  # AccessionNumber
        "00080090",  # ReferringPhysicianName
        "00081030",  # StudyDescription
        "00100010",  # PatientName
        "00100020",  # PatientID
        "00100021",  # IssuerOfPatientID
        "00100030",  # PatientBirthDate
        "00100032",  # PatientBirthTime
        "00100040",  # PatientSex
        "0020000D",  # StudyInstanceUID
        "00200010",  # StudyID
    }
)

#: Series attributes: the same in every instance of a series.
SERIES_LEVEL: Final = frozenset(
    {
        "00080021",  # SeriesDate
        "00080031",  # SeriesTime
        "00080060",  # Modality
        "0008103E",  # SeriesDescription
        "0020000E",  # SeriesInstanceUID
        "00200011",  # SeriesNumber
    }
)

#: Default attributes of a study row, plus those OHIF asks for (R1).
STUDY_QIDO: Final = (
    STUDY_LEVEL
    | {
        "00080005",  # SpecificCharacterSet
        "00080201",  # TimezoneOffsetFromUTC
    }
) - {"00100021", "00100032"}

#: Default attributes of a series row, plus those OHIF asks for (R2, R3).
SERIES_QIDO: Final = SERIES_LEVEL | {
    "00080005",  # SpecificCharacterSet
    "00080201",  # TimezoneOffsetFromUTC
    "0020000D",  # StudyInstanceUID
    "00400244",  # PerformedProcedureStepStartDate
    "00400245",  # PerformedProcedureStepStartTime
    "00400275",  # RequestAttributesSequence
}

#: Default attributes of an instance row (PS3.18 Table 10.6.3-5).
INSTANCE_QIDO: Final = frozenset(
    {
        "00080005",  # SpecificCharacterSet
        "00080016",  # SOPClassUID
        "00080018",  # SOPInstanceUID
        "00080201",  # TimezoneOffsetFromUTC
        "0020000D",  # StudyInstanceUID
        "0020000E",  # SeriesInstanceUID
        "00200013",  # InstanceNumber
        "00280008",  # NumberOfFrames
        "00280010",  # Rows
        "00280011",  # Columns
        "00280100",  # BitsAllocated
    }
)

INSTANCE_AVAILABILITY: Final = "00080056"
MODALITIES_IN_STUDY: Final = "00080061"
SOP_CLASSES_IN_STUDY: Final = "00080062"
RETRIEVE_URL: Final = "00081190"
NUMBER_OF_STUDY_RELATED_SERIES: Final = "00201206"
NUMBER_OF_STUDY_RELATED_INSTANCES: Final = "00201208"
NUMBER_OF_SERIES_RELATED_INSTANCES: Final = "00201209"
AVAILABLE_TRANSFER_SYNTAX_UID: Final = "00083002"

KEYWORDS: Final = {
    "00080020": "StudyDate",
    "00080030": "StudyTime",
    "00080050": "AccessionNumber",
    "00080090": "ReferringPhysicianName",
    "00081030": "StudyDescription",
    "00100010": "PatientName",
    "00100020": "PatientID",
    "00100021": "IssuerOfPatientID",
    "00100030": "PatientBirthDate",
    "00100032": "PatientBirthTime",
    "00100040": "PatientSex",
    "0020000D": "StudyInstanceUID",
    "00200010": "StudyID",
    "00080021": "SeriesDate",
    "00080031": "SeriesTime",
    "00080060": "Modality",
    "0008103E": "SeriesDescription",
    "0020000E": "SeriesInstanceUID",
    "00200011": "SeriesNumber",
}
