"""What an instance keeps between refreshes: made once, made again when its basis changes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from dicomweb_archive.model import pieces
from dicomweb_archive.model.instance import Instance, instance_sort_key, interned

_DATASET = {
    "00080018": {"vr": "UI", "Value": ["1.2.3.4"]},
    "00080060": {"vr": "CS", "Value": ["CT"]},
    "00100010": {"vr": "PN"},
    "00200013": {"vr": "IS", "Value": [7]},
}


def test_an_instance_holds_its_digests_and_values() -> None:
    instance = Instance.of(_DATASET)
    assert instance.sop == "1.2.3.4"
    assert instance.sort_key == instance_sort_key(_DATASET) == (7.0, "1.2.3.4")
    assert instance.valued == {"00080018", "00080060", "00200013"}
    assert "00100010" in instance.elements and "00100010" not in instance.values
    assert instance.mark == Instance.of(dict(_DATASET)).mark  # the same in any process


def test_signatures_follow_the_sorted_keys() -> None:
    instance = Instance.of(_DATASET)
    keys = interned(frozenset({"00200013", "00080060", "00091000"}))
    assert keys is interned(frozenset({"00080060", "00091000", "00200013"}))
    assert instance.elements_of(keys) == (
        instance.elements["00080060"],
        None,
        instance.elements["00200013"],
    )
    assert instance.values_of(keys)[1] == b""


def test_what_is_derived_is_kept_until_its_basis_is_another() -> None:
    instance = Instance.of(_DATASET)
    made: list[int] = []

    def make() -> int:
        made.append(1)
        return len(made)

    first, second = {"a": 1}, {"a": 1}
    assert instance.derived("kind", (first, None), make) == 1
    assert instance.derived("kind", (first, None), make) == 1
    assert instance.derived("kind", (second, None), make) == 2  # equal, not the same
    shared = frozenset({"00080060"})
    own = instance.own(shared)
    assert "00080060" not in own and instance.own(frozenset({"00080060"})) is own


def test_equal_elements_are_equal_bytes_wherever_they_stand() -> None:
    nested = {
        "vr": "SQ",
        "Value": [{"00080100": {"vr": "SH", "Value": ["A\n  {B"]}}, {}],
    }
    first = Instance.of({"00081032": nested, "00200013": {"vr": "IS", "Value": [7]}})
    # The same elements, one of them last, the other's keys in another order.
    second = Instance.of(
        {
            "00080018": {"vr": "UI", "Value": ["1.2.3.5"]},
            "00200013": {"Value": [7], "vr": "IS"},
            "00081032": nested,
        }
    )
    assert first.elements["00081032"] == second.elements["00081032"]
    assert first.elements["00200013"] is second.elements["00200013"]  # one object
    other = Instance.of({"00200013": {"vr": "IS", "Value": [7.0]}, "00201041": {"vr": "DS"}})
    assert other.elements["00200013"] != first.elements["00200013"]  # 7.0 is not 7
    assert set(other.elements) == {"00200013", "00201041"}


def test_values_compare_without_their_vr() -> None:
    study_date = "00080020"
    first = Instance.of({study_date: {"vr": "DA", "Value": ["20240101"]}})
    second = Instance.of({study_date: {"vr": "UN", "Value": ["20240101"]}})
    assert first.elements[study_date] != second.elements[study_date]
    assert first.values[study_date] == second.values[study_date]


def test_an_element_that_is_no_object_is_refused() -> None:
    with pytest.raises(ValueError, match="not an object"):
        Instance.of({"00080018": ["1.2.3.4"]})  # type: ignore[dict-item]


def test_bulk_data_uses_are_found_in_sequences_only_when_named() -> None:
    uri = "bulkdata/ab/cdef"
    item = {"00281201": {"vr": "OW", "BulkDataURI": uri}}
    instance = Instance.of({**_DATASET, "00282000": {"vr": "SQ", "Value": [item]}})
    assert instance.bulkdata == ((uri, "00282000/0/00281201", "OW"),)
    frames = {"7FE00010": {"vr": "OW", "BulkDataURI": "frames"}}
    assert Instance.of({**_DATASET, **frames}).bulkdata == ()


def test_elements_stay_equal_when_the_table_of_those_met_is_cleared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pieces, "_KNOWN_LIMIT", 1)  # cleared at each instance
    pieces._KNOWN.clear()
    first, second = Instance.of(_DATASET), Instance.of(dict(_DATASET))
    assert first.elements == second.elements and first.values == second.values
    assert len(pieces._KNOWN) <= len(_DATASET)


def test_instances_read_for_themselves_share_their_elements_alike() -> None:
    def read(number: int) -> dict[str, dict[str, object]]:
        return {
            "00080060": {"vr": "CS", "Value": ["CT"]},
            "00200013": {"vr": "IS", "Value": [number]},
        }

    first, second = Instance.of(read(1), owned=True), Instance.of(read(2), owned=True)
    assert second.dataset["00080060"] is first.dataset["00080060"]
    assert second.dataset["00200013"] == {"vr": "IS", "Value": [2]}
    assert second.elements == Instance.of(read(2)).elements
    held = read(1)
    modality = held["00080060"]
    assert Instance.of(held).dataset["00080060"] is modality  # not its own: left alone


def test_elements_shared_are_forgotten_with_the_table_of_those_met(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pieces, "_KNOWN_LIMIT", 1)  # cleared at each instance
    pieces._KNOWN.clear()
    Instance.of({"00080060": {"vr": "CS", "Value": ["CT"]}}, owned=True)
    assert len(pieces._KNOWN) <= 1


def _read_alike(ds: dict[str, Any]) -> None:
    """An instance read from its document is the one made of its dataset."""
    document = orjson.dumps([ds], option=orjson.OPT_SORT_KEYS)
    [read] = Instance.read(document)
    made = Instance.of(orjson.loads(document)[0])
    assert read.dataset == made.dataset == ds
    assert list(read.dataset) == sorted(ds)
    assert read.document == document[1:-1] == made.document
    assert read.elements == made.elements and list(read.elements) == sorted(ds)
    assert (read.valued, read.values, read.bulkdata) == (made.valued, made.values, made.bulkdata)
    assert (read.sop, read.sort_key, read.mark) == (made.sop, made.sort_key, made.mark)


def test_a_document_is_read_element_by_element_sequences_too() -> None:
    item = {
        "00080100": {"vr": "SH", "Value": ['A},"B']},
        "00080102": {"vr": "SH", "Value": ["LOCAL"]},
        "00081150": {"vr": "OB", "BulkDataURI": "bulkdata/ab/cd"},
    }
    nested = {"vr": "SQ", "Value": [item, {"00080102": item["00080102"]}, {}]}
    ds = {
        **_DATASET,
        "00081032": nested,
        "00080102": {"vr": "SH", "Value": ["LOCAL"]},
        "00400275": {"vr": "SQ", "Value": [{"00401001": {"vr": "SH", "Value": ["x"]}}]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "A^B"}, {"Alphabetic": "C"}]},
        "00201041": {"vr": "DS", "Value": [7.25]},
    }
    for _ in range(2):  # elements new, then known (a sequence by its pieces)
        _read_alike(ds)
    # Elements new beside a sequence met before: parsed together.
    _read_alike({**ds, "00080018": {"vr": "UI", "Value": ["1.2.5"]}, "00201041": {"vr": "DS"}})
    _read_alike({})
    _read_alike({"00080018": {"vr": "UI", "Value": ["1.2.3"]}})
    assert Instance.read(b"[]") == []


def test_a_sequence_too_long_to_merge_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pieces, "_MAX_MERGED", 2)
    items = [
        {"00080100": {"vr": "SH", "Value": [str(n)]}, "00080102": {"vr": "SH"}} for n in range(5)
    ]
    _read_alike({**_DATASET, "00081032": {"vr": "SQ", "Value": items}})


def test_documents_written_otherwise_are_read_as_before() -> None:
    ds = {"00200013": {"vr": "IS", "Value": [7]}, "00080018": {"vr": "UI", "Value": ["1.2.3"]}}
    for document in (
        orjson.dumps([ds]),  # keys not sorted
        orjson.dumps([ds], option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2),
        orjson.dumps([ds, ds], option=orjson.OPT_SORT_KEYS),
    ):
        read = Instance.read(document)
        assert [i.dataset for i in read] == orjson.loads(document)
        assert {i.document for i in read} == {orjson.dumps(ds, option=orjson.OPT_SORT_KEYS)}
    with pytest.raises(orjson.JSONDecodeError):
        Instance.read(b'[{"00080018":{"vr":"UI"}')
    with pytest.raises(ValueError, match="not an object"):
        Instance.read(b'[{"00080018":["1.2"]}]')


def test_a_row_as_json_is_the_row_dumped() -> None:
    own_url = {"00081190": {"vr": "UR", "Value": ["elsewhere"]}, "00100020": {"vr": "LO"}}
    for ds in ({**_DATASET}, {**_DATASET, **own_url}):
        instance = Instance.of(ds)
        for fields in (frozenset(), frozenset({"00100020", "00200013"})):
            expected = orjson.dumps(instance.row(fields), option=orjson.OPT_SORT_KEYS)
            assert instance.row_json(fields) == expected
            assert instance.row_json(fields) is instance.row_json(frozenset(fields))  # kept


def test_its_own_attributes_as_json_are_them_dumped() -> None:
    instance = Instance.of(_DATASET)
    for shared in (frozenset(), frozenset({"00080060"}), frozenset(_DATASET)):
        expected = orjson.dumps(instance.own(shared), option=orjson.OPT_SORT_KEYS)
        assert instance.own_json(shared) == expected
        assert instance.own_json(frozenset(shared)) is instance.own_json(shared)  # kept
