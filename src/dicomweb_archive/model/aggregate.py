"""Study-level documents derived from instance metadata; pure functions, no IO.

From the DICOM JSON of every instance of a study this builds the series and
study metadata (WADO-RS), the QIDO-RS rows of the study, its series and their
instances, and the deduplicated study document: attributes shared by the whole
study stored once, those shared by a series once per series, the rest per
instance.  Patient, study and series attributes that disagree between instances
are reported as :class:`Conflict`, an empty or absent value against a value
included.  A row then shows the value most instances hold (the study's order
breaks ties), never an empty one that some instance fills: a search by the
majority's PatientID or StudyDate finds the study.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from dicomweb_archive import tags
from dicomweb_archive.model import attributes as attrs
from dicomweb_archive.types import JSONDataset, first_value

DEDUPLICATED_FORMAT = "dicomweb-archive/deduplicated"


def _sort_number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("inf")


def instance_sort_key(ds: JSONDataset) -> tuple[float, str]:
    return (
        _sort_number(first_value(ds, tags.InstanceNumber)),
        str(first_value(ds, tags.SOPInstanceUID) or ""),
    )


def _canonical(element: Mapping[str, Any]) -> bytes:
    return orjson.dumps(element, option=orjson.OPT_SORT_KEYS)


def _uid(value: str, vr: str = "UI") -> dict[str, Any]:
    return {"vr": vr, "Value": [value]}


def _pick(ds: JSONDataset, keys: Iterable[str]) -> JSONDataset:
    return {k: ds[k] for k in keys if k in ds}


def _describe(element: Mapping[str, Any] | None) -> str:
    if element is None:
        return "(absent)"
    values = element.get("Value")
    if not values:
        return "(empty)"
    shown = []
    for v in values:
        if isinstance(v, dict):
            shown.append("=".join(str(c) for c in v.values()))
        else:
            shown.append(str(v))
    return "\\".join(shown)


@dataclass
class Conflict:
    """An attribute that should be equal across a study or series, and is not."""

    study: str
    series: str | None
    tag: str
    #: Each distinct value (as shown) with the instances that carry it.
    values: dict[str, list[str]]

    @property
    def keyword(self) -> str:
        return attrs.KEYWORDS.get(self.tag, self.tag)

    def message(self) -> str:
        where = f"series {self.series}" if self.series else f"study {self.study}"
        parts = [
            f"{value!r} in {len(sops)} instance{'s' if len(sops) != 1 else ''}"
            for value, sops in self.values.items()
        ]
        return f"{where}: {self.keyword} differs between instances: " + ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "series": self.series,
            "tag": self.tag,
            "keyword": self.keyword,
            "values": self.values,
        }


def _conflicts(
    study: str, series: str | None, instances: list[JSONDataset], keys: Iterable[str]
) -> list[Conflict]:
    found = []
    for key in sorted(keys):
        groups: dict[bytes, tuple[str, list[str]]] = {}
        for ds in instances:
            element = ds.get(key)
            # Empty and absent are one "no value", which contradicts any value.
            canonical = _canonical(element["Value"]) if element and element.get("Value") else b""
            group = groups.get(canonical)
            if group is None:  # describe each distinct value once, not per instance
                group = groups[canonical] = (_describe(element), [])
            group[1].append(str(first_value(ds, tags.SOPInstanceUID)))
        if len(groups) > 1:
            found.append(
                Conflict(study, series, key, {shown: sops for shown, sops in groups.values()})
            )
    return found


def _prevailing(instances: list[JSONDataset], key: str) -> dict[str, Any] | None:
    """The element of ``key`` that most instances with a value hold; the first on a tie.

    Without any value, the first instance's empty element (or None when absent).
    """
    counts: dict[bytes, tuple[int, dict[str, Any]]] = {}
    for ds in instances:
        element = ds.get(key)
        if element and element.get("Value"):
            canonical = _canonical(element)
            count, first = counts.get(canonical, (0, element))
            counts[canonical] = (count + 1, first)
    if counts:
        # max() keeps the first of equal counts: insertion order is the study's order.
        return max(counts.values(), key=lambda entry: entry[0])[1]
    return next((ds[key] for ds in instances if key in ds), None)


def _row(instances: list[JSONDataset], keys: Iterable[str]) -> JSONDataset:
    return {key: element for key in keys if (element := _prevailing(instances, key)) is not None}


@dataclass
class SeriesDocuments:
    series_instance_uid: str
    metadata: list[JSONDataset]
    instance_rows: list[JSONDataset]
    row: JSONDataset


@dataclass
class StudyDocuments:
    study_instance_uid: str
    series: list[SeriesDocuments]
    row: JSONDataset
    deduplicated: dict[str, Any]
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def metadata(self) -> list[JSONDataset]:
        return [ds for s in self.series for ds in s.metadata]

    @property
    def series_rows(self) -> list[JSONDataset]:
        return [s.row for s in self.series]


def _modalities(instances: Iterable[JSONDataset]) -> list[str]:
    return sorted({str(m) for ds in instances if (m := first_value(ds, tags.Modality))})


def _series_documents(
    study: str, series: str, instances: list[JSONDataset], fields: frozenset[str]
) -> SeriesDocuments:
    ordered = sorted(instances, key=instance_sort_key)
    rows = []
    for ds in ordered:
        row = _pick(ds, attrs.INSTANCE_QIDO | fields)
        row[tags.InstanceAvailability] = {"vr": "CS", "Value": ["ONLINE"]}
        row[tags.RetrieveURL] = {
            "vr": "UR",
            "Value": [f"instances/{first_value(ds, '00080018')}"],
        }
        rows.append(dict(sorted(row.items())))
    series_row = _row(ordered, attrs.SERIES_QIDO | fields)
    series_row[tags.NumberOfSeriesRelatedInstances] = {
        "vr": "IS",
        "Value": [len(ordered)],
    }
    series_row[tags.RetrieveURL] = {"vr": "UR", "Value": [f"series/{series}"]}
    series_row[tags.SeriesInstanceUID] = _uid(series)
    series_row[tags.StudyInstanceUID] = _uid(study)
    return SeriesDocuments(series, ordered, rows, dict(sorted(series_row.items())))


def _series_sort_key(doc: SeriesDocuments) -> tuple[float, str]:
    return (_sort_number(first_value(doc.row, tags.SeriesNumber)), doc.series_instance_uid)


def _deduplicate(study: str, series: list[SeriesDocuments]) -> dict[str, Any]:
    everything = [ds for s in series for ds in s.metadata]
    shared = _shared(everything)
    out_series: dict[str, Any] = {}
    out_instances: dict[str, Any] = {}
    for s in series:
        # A study's only series shares exactly what the study shares.
        series_shared = (
            {k: v for k, v in _shared(s.metadata).items() if k not in shared}
            if len(series) > 1
            else {}
        )
        out_series[s.series_instance_uid] = series_shared
        for ds in s.metadata:
            own = {k: v for k, v in ds.items() if k not in shared and k not in series_shared}
            out_instances[str(first_value(ds, tags.SOPInstanceUID))] = {
                "series": s.series_instance_uid,
                "attributes": own,
            }
    return {
        "format": DEDUPLICATED_FORMAT,
        "version": 1,
        "studyInstanceUID": study,
        "study": shared,
        "series": out_series,
        "instances": out_instances,
    }


def _shared(instances: list[JSONDataset]) -> JSONDataset:
    """Elements present, with the same value, in every one of ``instances``."""
    if not instances:
        return {}
    first, rest = instances[0], instances[1:]
    # JSON values compare exactly as Python values (1 == 1.0 cannot arise: each
    # element's VR fixes its number type).
    return {
        key: element for key, element in first.items() if all(ds.get(key) == element for ds in rest)
    }


def reconstruct_instances(document: Mapping[str, Any]) -> list[JSONDataset]:
    """The full instance datasets a deduplicated document stands for."""
    out = []
    for entry in document["instances"].values():
        ds = dict(document["study"])
        ds.update(document["series"][entry["series"]])
        ds.update(entry["attributes"])
        out.append(dict(sorted(ds.items())))
    return out


def study_documents(
    study: str, by_series: Mapping[str, list[JSONDataset]], qido_fields: Iterable[str] = ()
) -> StudyDocuments:
    """Every derived document of one study from its instances' metadata.

    ``qido_fields`` (8-hex tags) join the QIDO-RS rows of every level: an
    instance row holds the instance's own value, a series or study row the
    value most of its instances hold.
    """
    fields = frozenset(qido_fields)
    series_docs = sorted(
        (_series_documents(study, se, insts, fields) for se, insts in by_series.items() if insts),
        key=_series_sort_key,
    )
    everything = [ds for s in series_docs for ds in s.metadata]
    if not everything:
        raise ValueError(f"study {study} has no instances")
    conflicts = _conflicts(study, None, everything, attrs.STUDY_LEVEL - {tags.StudyInstanceUID})
    for s in series_docs:
        conflicts.extend(
            _conflicts(
                study,
                s.series_instance_uid,
                s.metadata,
                attrs.SERIES_LEVEL - {tags.SeriesInstanceUID},
            )
        )
    row = _row(everything, attrs.STUDY_QIDO | fields)
    modalities = _modalities(everything)
    if modalities:
        row[tags.ModalitiesInStudy] = {"vr": "CS", "Value": modalities}
    row[tags.NumberOfStudyRelatedSeries] = {"vr": "IS", "Value": [len(series_docs)]}
    row[tags.NumberOfStudyRelatedInstances] = {"vr": "IS", "Value": [len(everything)]}
    row[tags.InstanceAvailability] = {"vr": "CS", "Value": ["ONLINE"]}
    row[tags.RetrieveURL] = {"vr": "UR", "Value": [f"studies/{study}"]}
    row[tags.StudyInstanceUID] = _uid(study)
    return StudyDocuments(
        study_instance_uid=study,
        series=series_docs,
        row=dict(sorted(row.items())),
        deduplicated=_deduplicate(study, series_docs),
        conflicts=conflicts,
    )


def study_sort_key(row: JSONDataset) -> tuple[str, str, str]:
    return (
        str(first_value(row, tags.StudyDate) or ""),
        str(first_value(row, tags.StudyTime) or ""),
        str(first_value(row, tags.StudyInstanceUID) or ""),
    )
