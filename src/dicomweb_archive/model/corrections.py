"""Corrections of patient, study and series attributes: which may change, and how.

``dwa update --set PatientName=Doe^John`` names an attribute by keyword and
gives its new value as DICOM text (``\\`` between values; empty: no value).
Only attributes of the Patient, General Study, Patient Study and General
Series modules that describe the patient, the study or the series may be
corrected: UIDs identify where an instance is stored, and the Image Pixel
attributes describe its frames, which a correction never touches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dicomweb_archive.errors import InvalidInputError
from dicomweb_archive.types import JSONDataset

#: What may be corrected: keyword -> (tag, VR).
CORRECTABLE: dict[str, tuple[str, str]] = {
    # Patient
    "PatientName": ("00100010", "PN"),
    "PatientID": ("00100020", "LO"),
    "IssuerOfPatientID": ("00100021", "LO"),
    "PatientBirthDate": ("00100030", "DA"),
    "PatientBirthTime": ("00100032", "TM"),
    "PatientSex": ("00100040", "CS"),
    "OtherPatientNames": ("00101001", "PN"),
    "PatientComments": ("00104000", "LT"),
    "EthnicGroup": ("00102160", "SH"),
    # Patient Study
    "PatientAge": ("00101010", "AS"),
    "PatientSize": ("00101020", "DS"),
    "PatientWeight": ("00101030", "DS"),
    "AdmittingDiagnosesDescription": ("00081080", "LO"),
    # General Study
    "StudyDate": ("00080020", "DA"),
    "StudyTime": ("00080030", "TM"),
    "AccessionNumber": ("00080050", "SH"),
    "ReferringPhysicianName": ("00080090", "PN"),
    "StudyDescription": ("00081030", "LO"),
    "StudyID": ("00200010", "SH"),
    # General Series (and the equipment it was made on)
    "SeriesDate": ("00080021", "DA"),
    "SeriesTime": ("00080031", "TM"),
    "SeriesDescription": ("0008103E", "LO"),
    "SeriesNumber": ("00200011", "IS"),
    "PerformingPhysicianName": ("00081050", "PN"),
    "OperatorsName": ("00081070", "PN"),
    "ProtocolName": ("00181030", "LO"),
    "BodyPartExamined": ("00180015", "CS"),
    "Laterality": ("00200060", "CS"),
    "InstitutionName": ("00080080", "LO"),
    "StationName": ("00081010", "SH"),
}

_IDENTIFYING = frozenset(
    {
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "SOPClassUID",
        "FrameOfReferenceUID",
        "InstanceNumber",
    }
)
_PIXEL = frozenset(
    {
        "PixelData",
        "FloatPixelData",
        "DoubleFloatPixelData",
        "Rows",
        "Columns",
        "NumberOfFrames",
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "PlanarConfiguration",
        "BitsAllocated",
        "BitsStored",
        "HighBit",
        "PixelRepresentation",
        "TransferSyntaxUID",
        "AvailableTransferSyntaxUID",
        "LossyImageCompression",
    }
)
#: VRs whose text is one value, backslashes included.
_SINGLE = frozenset({"LT", "ST", "UT"})
_FORMATS = {
    "DA": re.compile(r"\d{8}"),
    "TM": re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?"),
    "AS": re.compile(r"\d{3}[DWMY]"),
    "IS": re.compile(r"[+-]?\d{1,12}"),
    "DS": re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"),
}


@dataclass(frozen=True)
class Correction:
    """One attribute's new value, as given (``PatientName``, ``Doe^John``)."""

    keyword: str
    value: str

    @property
    def tag(self) -> str:
        return CORRECTABLE[self.keyword][0]

    @property
    def vr(self) -> str:
        return CORRECTABLE[self.keyword][1]

    def element(self) -> dict[str, Any]:
        """The new value as a DICOM JSON element."""
        if self.value == "":
            return {"vr": self.vr}
        values = [self.value] if self.vr in _SINGLE else self.value.split("\\")
        converted: list[Any]
        if self.vr == "PN":
            converted = [{"Alphabetic": v} if v else {} for v in values]
        elif self.vr == "IS":
            converted = [int(v) for v in values]
        elif self.vr == "DS":
            converted = [_number(v) for v in values]
        else:
            converted = values
        return {"vr": self.vr, "Value": converted}

    def to_json(self) -> dict[str, str]:
        return {"keyword": self.keyword, "value": self.value}

    @classmethod
    def from_json(cls, document: dict[str, str]) -> Correction:
        return parse_assignment(f"{document['keyword']}={document['value']}")


def _number(text: str) -> int | float:
    return int(text) if _FORMATS["IS"].fullmatch(text) else float(text)


def parse_assignment(text: str) -> Correction:
    """``Keyword=value`` as a :class:`Correction`; refused with the reason."""
    keyword, equals, value = text.partition("=")
    keyword = keyword.strip()
    if not equals or not keyword:
        raise InvalidInputError(f"{text!r}: expected Keyword=value (PatientName=Doe^John)")
    if keyword in _IDENTIFYING:
        raise InvalidInputError(
            f"{keyword} identifies the instance and cannot be updated in place; "
            "store the instance again under its new UIDs instead"
        )
    if keyword in _PIXEL:
        raise InvalidInputError(
            f"{keyword} describes the pixel data, which an update never changes"
        )
    if keyword not in CORRECTABLE:
        raise InvalidInputError(
            f"{keyword} is not a patient, study or series attribute that can be updated "
            f"(these can: {', '.join(sorted(CORRECTABLE))})"
        )
    correction = Correction(keyword, value)
    pattern = _FORMATS.get(correction.vr)
    values = [value] if correction.vr in _SINGLE else value.split("\\")
    if value and pattern is not None and not all(pattern.fullmatch(v) for v in values):
        raise InvalidInputError(f"{keyword}={value!r} is not a valid {correction.vr} value")
    return correction


def apply_corrections(dataset: JSONDataset, corrections: list[Correction]) -> list[dict[str, Any]]:
    """Set the corrected attributes of ``dataset``; returns what changed, old and new.

    Each change is ``{"tag", "keyword", "old", "new"}`` with the DICOM JSON
    elements (``old`` None when the attribute was absent).  An attribute that
    already holds the value is not a change, so applying twice changes nothing.
    """
    changes = []
    for correction in corrections:
        new = correction.element()
        old = dataset.get(correction.tag)
        if old == new:
            continue
        dataset[correction.tag] = new
        changes.append(
            {"tag": correction.tag, "keyword": correction.keyword, "old": old, "new": new}
        )
    return changes
