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

import functools
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dicomweb_archive import tags
from dicomweb_archive.model import attributes as attrs
from dicomweb_archive.model.instance import Instance, interned, sort_number
from dicomweb_archive.model.runs import Run, groups, runs, shared_keys
from dicomweb_archive.types import JSONDataset, first_value

DEDUPLICATED_FORMAT = "dicomweb-archive/deduplicated"


def _uid(value: str, vr: str = "UI") -> dict[str, Any]:
    return {"vr": vr, "Value": [value]}


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


_STUDY_CONFLICTS = attrs.STUDY_LEVEL - {tags.StudyInstanceUID}
_SERIES_CONFLICTS = attrs.SERIES_LEVEL - {tags.SeriesInstanceUID}
_MODALITY = frozenset({tags.Modality})
_SORT_KEY = operator.attrgetter("sort_key")


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
    study: str, series: str | None, instances: list[Run], keys: frozenset[str]
) -> list[Conflict]:
    # Instances with equal values of every key agree on each: one of each
    # such group tells whether a key differs at all (rarely), and only then
    # are its instances listed one by one.
    representatives = groups(instances, keys, Instance.values_of)
    return [
        _conflict(study, series, [i for run in instances for i in run], key)
        for key in sorted(keys)
        if len({r.values.get(key, b"") for r, _ in representatives}) > 1
    ]


def _conflict(study: str, series: str | None, instances: list[Instance], key: str) -> Conflict:
    by_value: dict[bytes, tuple[str, list[str]]] = {}
    for instance in instances:
        # Empty and absent are one "no value", which contradicts any value.
        canonical = instance.values.get(key, b"")
        group = by_value.get(canonical)
        if group is None:  # describe each distinct value once, not per instance
            group = by_value[canonical] = (_describe(instance.dataset.get(key)), [])
        group[1].append(instance.sop)
    return Conflict(study, series, key, {shown: sops for shown, sops in by_value.values()})


def _prevailing(alike: list[tuple[Instance, int]], key: str) -> dict[str, Any] | None:
    """The element of ``key`` that most instances with a value hold; the first on a tie.

    Without any value, the first instance's empty element (or None when absent).
    ``alike`` (:func:`~dicomweb_archive.model.runs.groups`) hold alike
    instances: each counts for its size.
    """
    counts: dict[bytes, list[Any]] = {}
    for instance, size in alike:
        if key in instance.valued:
            entry = counts.get(instance.elements[key])
            if entry is None:
                counts[instance.elements[key]] = [size, instance.dataset[key]]
            else:
                entry[0] += size
    if counts:
        # max() keeps the first of equal counts: insertion order is the study's order.
        element: dict[str, Any] = max(counts.values(), key=lambda entry: entry[0])[1]
        return element
    return next((i.dataset[key] for i, _ in alike if key in i.dataset), None)


def _row(instances: list[Run], keys: frozenset[str]) -> JSONDataset:
    alike = groups(instances, keys, Instance.elements_of)
    return {key: element for key in keys if (element := _prevailing(alike, key)) is not None}


@dataclass
class SeriesDocuments:
    series_instance_uid: str
    #: The series' instances in their order.
    instances: list[Instance]
    row: JSONDataset
    #: The archive's extra QIDO-RS fields, in the instance rows too.
    fields: frozenset[str] = frozenset()
    #: The instances in runs (:mod:`~dicomweb_archive.model.runs`).
    runs: list[Run] = field(default_factory=list, repr=False)
    #: The keys of the attributes its instances share with the study or the
    #: series (not among their own in the deduplicated document).
    shared: frozenset[str] = frozenset()
    #: The instances as given (by a study's view: in the order of their UIDs).
    listed: list[Instance] = field(default_factory=list, repr=False)

    @property
    def metadata(self) -> list[JSONDataset]:
        return [instance.dataset for instance in self.instances]

    @property
    def instance_rows(self) -> list[JSONDataset]:
        return [instance.row(self.fields) for instance in self.instances]


@dataclass
class StudyDocuments:
    study_instance_uid: str
    series: list[SeriesDocuments]
    row: JSONDataset
    #: The attributes every instance holds alike (the deduplicated "study").
    shared: JSONDataset
    #: What each series' instances hold alike beyond those, by series.
    series_shared: dict[str, JSONDataset]
    conflicts: list[Conflict] = field(default_factory=list)

    @functools.cached_property
    def deduplicated(self) -> dict[str, Any]:
        """The deduplicated document (without its conflicts)."""
        return {
            "format": DEDUPLICATED_FORMAT,
            "version": 1,
            "studyInstanceUID": self.study_instance_uid,
            "study": self.shared,
            "series": self.series_shared,
            "instances": {
                instance.sop: {
                    "series": s.series_instance_uid,
                    "attributes": instance.own(s.shared),
                }
                for s in self.series
                for instance in s.instances
            },
        }

    @property
    def metadata(self) -> list[JSONDataset]:
        return [ds for s in self.series for ds in s.metadata]

    @property
    def series_rows(self) -> list[JSONDataset]:
        return [s.row for s in self.series]


def _modalities(instances: list[Run]) -> list[str]:
    alike = groups(instances, _MODALITY, Instance.elements_of)
    return sorted({str(m) for i, _ in alike if (m := first_value(i.dataset, tags.Modality))})


def _series_documents(
    study: str, series: str, instances: list[Instance], fields: frozenset[str]
) -> SeriesDocuments:
    ordered = sorted(instances, key=_SORT_KEY)
    cut = runs(ordered)
    series_row = _row(cut, interned(attrs.SERIES_QIDO | fields))
    series_row[tags.NumberOfSeriesRelatedInstances] = {
        "vr": "IS",
        "Value": [len(ordered)],
    }
    series_row[tags.RetrieveURL] = {"vr": "UR", "Value": [f"series/{series}"]}
    series_row[tags.SeriesInstanceUID] = _uid(series)
    series_row[tags.StudyInstanceUID] = _uid(study)
    row = dict(sorted(series_row.items()))
    return SeriesDocuments(series, ordered, row, fields, cut, listed=instances)


def _series_sort_key(doc: SeriesDocuments) -> tuple[float, str]:
    return (sort_number(first_value(doc.row, tags.SeriesNumber)), doc.series_instance_uid)


def _deduplicate(series: list[SeriesDocuments]) -> tuple[JSONDataset, dict[str, JSONDataset]]:
    """What every instance shares, and what each series' share beyond it (by
    series); notes in each series the keys its instances do not hold as their own."""
    shared = _shared([run for s in series for run in s.runs])
    out_series: dict[str, JSONDataset] = {}
    for s in series:
        # A study's only series shares exactly what the study shares.
        series_shared = (
            {k: v for k, v in _shared(s.runs).items() if k not in shared} if len(series) > 1 else {}
        )
        out_series[s.series_instance_uid] = series_shared
        s.shared = interned(frozenset(shared).union(series_shared))
    return shared, out_series


def _shared(instances: list[Run]) -> JSONDataset:
    """Elements present, with the same value, in every one of ``instances``."""
    if not instances:
        return {}
    keys = shared_keys(instances)
    return {key: element for key, element in instances[0][0].dataset.items() if key in keys}


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
    study: str,
    by_series: Mapping[str, Sequence[JSONDataset | Instance]],
    qido_fields: Iterable[str] = (),
) -> StudyDocuments:
    """Every derived document of one study from its instances' metadata (or
    their :class:`Instance`, kept from an earlier refresh).

    ``qido_fields`` (8-hex tags) join the QIDO-RS rows of every level: an
    instance row holds the instance's own value, a series or study row the
    value most of its instances hold.
    """
    fields = frozenset(qido_fields)
    series_docs = sorted(
        (
            _series_documents(
                study, se, [i if isinstance(i, Instance) else Instance.of(i) for i in insts], fields
            )
            for se, insts in by_series.items()
            if insts
        ),
        key=_series_sort_key,
    )
    everything = [run for s in series_docs for run in s.runs]
    if not everything:
        raise ValueError(f"study {study} has no instances")
    conflicts = _conflicts(study, None, everything, _STUDY_CONFLICTS)
    for s in series_docs:
        conflicts.extend(_conflicts(study, s.series_instance_uid, s.runs, _SERIES_CONFLICTS))
    row = _row(everything, interned(attrs.STUDY_QIDO | fields))
    modalities = _modalities(everything)
    if modalities:
        row[tags.ModalitiesInStudy] = {"vr": "CS", "Value": modalities}
    row[tags.NumberOfStudyRelatedSeries] = {"vr": "IS", "Value": [len(series_docs)]}
    count = sum(len(s.instances) for s in series_docs)
    row[tags.NumberOfStudyRelatedInstances] = {"vr": "IS", "Value": [count]}
    row[tags.InstanceAvailability] = {"vr": "CS", "Value": ["ONLINE"]}
    row[tags.RetrieveURL] = {"vr": "UR", "Value": [f"studies/{study}"]}
    row[tags.StudyInstanceUID] = _uid(study)
    shared, series_shared = _deduplicate(series_docs)
    return StudyDocuments(
        study_instance_uid=study,
        series=series_docs,
        row=dict(sorted(row.items())),
        shared=shared,
        series_shared=series_shared,
        conflicts=conflicts,
    )


def study_sort_key(row: JSONDataset) -> tuple[str, str, str]:
    return (
        str(first_value(row, tags.StudyDate) or ""),
        str(first_value(row, tags.StudyTime) or ""),
        str(first_value(row, tags.StudyInstanceUID) or ""),
    )
