from __future__ import annotations

from typing import Any

import orjson
import pytest

from dicomweb_archive.model.aggregate import reconstruct_instances, study_documents
from dicomweb_archive.model.instance import Instance


def _instance(sop: str, series: str, number: int, **extra: Any) -> dict[str, Any]:
    ds = {
        "00080018": {"vr": "UI", "Value": [sop]},
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
        "00080060": {"vr": "CS", "Value": ["CT"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
        "00100020": {"vr": "LO", "Value": ["P1"]},
        "0020000D": {"vr": "UI", "Value": ["1.2"]},
        "0020000E": {"vr": "UI", "Value": [series]},
        "00200013": {"vr": "IS", "Value": [number]},
        "00200011": {"vr": "IS", "Value": [int(series[-1])]},
    }
    ds.update(extra)
    return dict(sorted(ds.items()))


def test_documents_order_counts_and_dedup() -> None:
    by_series = {
        "1.2.3.2": [_instance("1.9.2", "1.2.3.2", 1)],
        "1.2.3.1": [_instance("1.9.12", "1.2.3.1", 10), _instance("1.9.3", "1.2.3.1", 2)],
    }
    docs = study_documents("1.2", by_series)
    assert [s.series_instance_uid for s in docs.series] == ["1.2.3.1", "1.2.3.2"]
    assert [d["00200013"]["Value"][0] for d in docs.series[0].metadata] == [2, 10]
    assert docs.row["00201206"]["Value"] == [2]
    assert docs.row["00201208"]["Value"] == [3]
    assert docs.conflicts == []
    dedup = docs.deduplicated
    assert set(dedup["study"]) >= {"00100010", "00100020", "0020000D", "00080016"}
    assert "0020000E" in dedup["series"]["1.2.3.1"]
    assert set(dedup["instances"]["1.9.3"]["attributes"]) == {"00080018", "00200013"}
    rebuilt = sorted(reconstruct_instances(dedup), key=lambda d: d["00080018"]["Value"][0])
    assert rebuilt == sorted(docs.metadata, key=lambda d: d["00080018"]["Value"][0])


def test_conflicts_are_reported_not_picked() -> None:
    other = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Roe^Rick"}]}}
    by_series = {
        "1.2.3.1": [_instance("1.9.1", "1.2.3.1", 1), _instance("1.9.2", "1.2.3.1", 2, **other)]
    }
    docs = study_documents("1.2", by_series)
    [conflict] = docs.conflicts
    assert conflict.tag == "00100010" and conflict.series is None
    assert conflict.values == {"Doe^Jane": ["1.9.1"], "Roe^Rick": ["1.9.2"]}
    assert "00100010" not in docs.deduplicated["study"]
    assert "PatientName differs" in conflict.message()
    # The row shows a value the instances hold; which one, the majority decides.
    assert docs.row["00100010"]["Value"] == [{"Alphabetic": "Doe^Jane"}]


@pytest.mark.parametrize("missing", [{"vr": "LO"}, None], ids=["empty", "absent"])
def test_no_value_against_a_value_is_a_conflict(missing: dict[str, Any] | None) -> None:
    # The first instance in the study's order has no PatientID: the row still
    # carries the one the other instance holds, so a search by it finds the study.
    blank = _instance("1.9.1", "1.2.3.1", 1)
    if missing is None:
        del blank["00100020"]
    else:
        blank["00100020"] = missing
    docs = study_documents(
        "1.2", {"1.2.3.1": [blank, _instance("1.9.2", "1.2.3.1", 2, **_id("1234"))]}
    )
    [conflict] = docs.conflicts
    assert conflict.tag == "00100020"
    assert conflict.values == {"(empty)" if missing else "(absent)": ["1.9.1"], "1234": ["1.9.2"]}
    assert docs.row["00100020"] == {"vr": "LO", "Value": ["1234"]}
    assert docs.series[0].row["0020000D"]["Value"] == ["1.2"]


def test_rows_show_the_majority_value() -> None:
    date = {"vr": "DA", "Value": ["20240102"]}
    other = {"vr": "DA", "Value": ["20230101"]}
    modality = {"vr": "CS", "Value": ["MR"]}
    instances = [
        _instance("1.9.1", "1.2.3.1", 1, **{"00080020": other, "00080060": modality}),
        *(_instance(f"1.9.{n}", "1.2.3.1", n, **{"00080020": date}) for n in (2, 3)),
    ]
    docs = study_documents("1.2", {"1.2.3.1": instances})
    assert docs.row["00080020"] == date
    assert docs.series[0].row["00080060"]["Value"] == ["CT"]
    assert {c.tag for c in docs.conflicts} == {"00080020", "00080060"}
    # On a tie, the first instance in the study's order.
    tie = study_documents("1.2", {"1.2.3.1": instances[:2]})
    assert tie.row["00080020"] == other


def _id(value: str) -> dict[str, Any]:
    return {"00100020": {"vr": "LO", "Value": [value]}}


def test_qido_fields_join_every_level() -> None:
    kvp = "00180060"

    def with_kvp(sop: str, number: int, value: float) -> dict[str, Any]:
        return _instance(sop, "1.2.3.1", number, **{kvp: {"vr": "DS", "Value": [value]}})

    by_series = {
        "1.2.3.1": [with_kvp("1.9.1", 1, 120), with_kvp("1.9.2", 2, 100), with_kvp("1.9.3", 3, 100)]
    }
    plain = study_documents("1.2", by_series)
    assert kvp not in plain.row and kvp not in plain.series[0].row
    assert all(kvp not in row for row in plain.series[0].instance_rows)
    docs = study_documents("1.2", by_series, [kvp])
    # Each instance its own value; the series and the study the value most hold.
    assert [row[kvp]["Value"] for row in docs.series[0].instance_rows] == [[120], [100], [100]]
    assert docs.series[0].row[kvp]["Value"] == [100]
    assert docs.row[kvp]["Value"] == [100]
    # Nothing else changes.
    assert docs.deduplicated == plain.deduplicated
    assert docs.metadata == plain.metadata


def test_documents_from_kept_instances_equal_those_from_datasets() -> None:
    """What an Instance keeps between refreshes never leaks into the next study's
    documents: a study grown, shrunk and changed is derived as from scratch."""
    names = [{"00100010": {"vr": "PN", "Value": [{"Alphabetic": name}]}} for name in ("A", "B")]
    first = {
        "1.2.3.1": [_instance(f"1.9.{n}", "1.2.3.1", n) for n in range(1, 6)],
        "1.2.3.2": [_instance("1.9.20", "1.2.3.2", 1, **names[0])],
    }
    kept = {se: [Instance.of(ds) for ds in datasets] for se, datasets in first.items()}
    changed = Instance.of(_instance("1.9.21", "1.2.3.2", 2, **names[1]))
    steps = [
        kept,
        {**kept, "1.2.3.2": [*kept["1.2.3.2"], changed]},  # a conflict arrives
        {"1.2.3.1": kept["1.2.3.1"][1:]},  # a series and an instance go
        kept,
    ]
    for step in steps:
        datasets = {se: [i.dataset for i in instances] for se, instances in step.items()}
        for fields in ((), ("00280010",)):
            made, fresh = (
                study_documents("1.2", step, fields),
                study_documents("1.2", datasets, fields),
            )
            assert orjson.dumps([made.row, made.series_rows, made.deduplicated]) == orjson.dumps(
                [fresh.row, fresh.series_rows, fresh.deduplicated]
            )
            assert [c.to_json() for c in made.conflicts] == [c.to_json() for c in fresh.conflicts]
            assert [s.instance_rows for s in made.series] == [s.instance_rows for s in fresh.series]
