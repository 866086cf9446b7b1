"""A Query/Retrieve identifier as a search of the QIDO-RS index, and matches back.

C-FIND, C-GET and C-MOVE search the same SQLite index QIDO-RS answers from,
with the same matching (:mod:`dicomweb_archive.model.matching`): each key of
the identifier with a value is a matching key (a value of its VR as text:
wildcards, ranges and UID lists mean what they mean in QIDO-RS), every key is
a return key, and a sequence's item holds the keys matched inside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dicomweb_archive import tags
from dicomweb_archive.model.matching import InvalidQueryError
from dicomweb_archive.store.index import Level, Query
from dicomweb_archive.types import JSONDataset

#: The Query/Retrieve levels (0008,0052) and the index level each searches;
#: PATIENT searches studies and groups them by patient.
LEVELS = {
    "PATIENT": Level.STUDY,
    "STUDY": Level.STUDY,
    "SERIES": Level.SERIES,
    "IMAGE": Level.INSTANCE,
}
QUERY_RETRIEVE_LEVEL = 0x00080052
SPECIFIC_CHARACTER_SET = 0x00080005
RETRIEVE_AE_TITLE = 0x00080054
#: Answered by us, never matched.
_NOT_MATCHED = {QUERY_RETRIEVE_LEVEL, SPECIFIC_CHARACTER_SET, RETRIEVE_AE_TITLE}


@dataclass
class Search:
    """An identifier read: its level, the index query, the return keys."""

    level: str
    query: Query
    #: (tag, VR) of each return key, in the identifier's order.
    keys: list[tuple[int, str]]

    @property
    def index_level(self) -> Level:
        return LEVELS[self.level]


def level_of(identifier: Dataset) -> str:
    """The identifier's Query/Retrieve Level; raises when it has none we know."""
    level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
    if level not in LEVELS:
        known = ", ".join(LEVELS)
        raise InvalidQueryError(f"Query/Retrieve Level {level or 'missing'}: not one of {known}")
    return level


def value_text(element: DataElement) -> str:
    """An element's value as a QIDO-RS query value (multiple values joined by ``\\``)."""
    value = element.value
    if value is None or value == "" or value == b"":
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return str(value).strip()


def read_identifier(identifier: Dataset) -> Search:
    """The search an identifier asks for."""
    level = level_of(identifier)
    query = Query(include=set())
    assert query.include is not None
    keys: list[tuple[int, str]] = []
    for element in identifier:
        tag = int(element.tag)
        if tag >> 16 in (0x0000, 0x0002) or tag in (QUERY_RETRIEVE_LEVEL, SPECIFIC_CHARACTER_SET):
            continue
        keys.append((tag, element.VR))
        key = f"{tag:08X}"
        query.include.add(key)
        if tag in _NOT_MATCHED:
            continue
        if element.VR == "SQ":
            for item in (element.value or [])[:1]:
                for inner in item:
                    text = value_text(inner)
                    if text:
                        query.match.append((f"{key}.{int(inner.tag):08X}", inner.VR, text))
            continue
        text = value_text(element)
        if text:
            query.match.append((key, element.VR, text))
    query.study = _single_uid(identifier, "StudyInstanceUID")
    query.series = _single_uid(identifier, "SeriesInstanceUID")
    return Search(level, query, keys)


def _single_uid(identifier: Dataset, keyword: str) -> str | None:
    """The one UID a key names (a list or a wildcard narrows nothing here)."""
    text = value_text(identifier[keyword]) if keyword in identifier else ""
    return text if text and "\\" not in text and "*" not in text and "?" not in text else None


def match_identifier(
    row: JSONDataset, search: Search, ae_title: str, extra: JSONDataset | None = None
) -> Dataset:
    """The identifier of one match: every return key, empty where the row lacks it."""
    document: dict[str, Any] = {}
    for tag, vr in search.keys:
        key = f"{tag:08X}"
        element = (extra or {}).get(key) or row.get(key)
        document[key] = element if element is not None else {"vr": vr}
    ds = Dataset.from_json(document)
    ds.QueryRetrieveLevel = search.level
    if RETRIEVE_AE_TITLE in {tag for tag, _ in search.keys}:
        ds.RetrieveAETitle = ae_title
    # The index holds DICOM JSON: Unicode text, sent as UTF-8.
    ds.SpecificCharacterSet = "ISO_IR 192"
    return ds


def patients(rows: Iterable[JSONDataset]) -> list[tuple[JSONDataset, JSONDataset]]:
    """Study rows grouped by patient: the first row of each, with the patient's counts."""
    grouped: dict[str, tuple[JSONDataset, list[JSONDataset]]] = {}
    for row in rows:
        patient = _patient_key(row)
        if patient not in grouped:
            grouped[patient] = (row, [])
        grouped[patient][1].append(row)
    answers = []
    for first, studies in grouped.values():
        counts = {
            tags.NumberOfPatientRelatedStudies: len(studies),
            tags.NumberOfPatientRelatedSeries: _total(studies, tags.NumberOfStudyRelatedSeries),
            tags.NumberOfPatientRelatedInstances: _total(
                studies, tags.NumberOfStudyRelatedInstances
            ),
        }
        answers.append((first, {key: {"vr": "IS", "Value": [n]} for key, n in counts.items()}))
    return answers


def _patient_key(row: JSONDataset) -> str:
    """Patient ID, else the name: studies of one patient share it."""
    for key in (tags.PatientID, tags.PatientName):
        values = (row.get(key) or {}).get("Value") or []
        if values:
            return f"{key}={values[0]}"
    return ""


def _total(rows: list[JSONDataset], key: str) -> int:
    total = 0
    for row in rows:
        values = (row.get(key) or {}).get("Value") or [0]
        total += int(values[0])
    return total
