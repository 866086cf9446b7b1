"""A dataset's canonical JSON cut into its elements: what a parse gives,
sequences merged, what the last document made copied, anything else refused."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from dicomweb_archive.model import pieces
from dicomweb_archive.model.pieces import cut, cut_one_by_one

_ITEM = {
    "00080100": {"vr": "SH", "Value": ['A},"B']},
    "00080102": {"vr": "SH", "Value": ["LOCAL"]},
}
_DATASET: dict[str, Any] = {
    "00080018": {"vr": "UI", "Value": ["1.2.3.4"]},
    "00080102": {"vr": "SH", "Value": ["LOCAL"]},
    "00081032": {"vr": "SQ", "Value": [_ITEM, {"00080102": _ITEM["00080102"]}, {}]},
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "A^B"}, {"Alphabetic": "C"}]},
    "00100020": {"vr": "LO", "Value": ["P1"]},
    "00200013": {"vr": "IS", "Value": [7]},
    "00201041": {"vr": "DS", "Value": [7.25]},
    "00281050": {"vr": "DS"},
}


def _canonical(ds: dict[str, Any]) -> bytes:
    return orjson.dumps(ds, option=orjson.OPT_SORT_KEYS)


def _cut_alike(ds: dict[str, Any]) -> pieces.Cut:
    """The cut of ``ds``'s canonical JSON is what parsing it gives."""
    made = cut(_canonical(ds))
    assert made is not None
    assert made.dataset == ds and list(made.dataset) == sorted(ds)
    assert [e.key for e in made.elements] == sorted(ds)
    assert made == cut_one_by_one(ds)
    for key, element in ds.items():
        assert made.pieces[key] == _canonical({key: element})[2:-2]
    # The values of the keys compared between instances, when they have one.
    compared = {k: e["Value"] for k, e in ds.items() if k in pieces.LEVEL_KEYS and e.get("Value")}
    assert made.values == {k: _canonical({"Value": v}) for k, v in compared.items()}
    assert [e.valued for e in made.elements] == [bool(ds[k].get("Value")) for k in sorted(ds)]
    return made


@pytest.mark.parametrize("last", [False, True])
def test_a_canonical_document_cuts_into_its_elements(last: bool) -> None:
    pieces._KNOWN.clear()
    pieces._last = None
    first = _cut_alike(_DATASET)
    assert _cut_alike(_DATASET).elements == first.elements  # known now
    if not last:
        pieces._last = None
    # Other values of a few elements: those copied from the last, those met
    # before shared, the new ones parsed (together).
    other = {**_DATASET, "00080018": {"vr": "UI", "Value": ["1.2.5"]}, "00201041": {"vr": "DS"}}
    made = _cut_alike(other)
    assert made.pieces["00100010"] is first.pieces["00100010"]
    assert made.dataset["00081032"] is first.dataset["00081032"]
    # As many pieces, but another key; another item in a sequence.
    renamed = {k if k != "00200013" else "00200014": e for k, e in other.items()}
    _cut_alike(renamed)
    item = {"00080100": {"vr": "SH", "Value": ["X"]}, "00080102": _ITEM["00080102"]}
    _cut_alike({**renamed, "00081032": {"vr": "SQ", "Value": [item, item, {}]}})
    # An element now a sequence's, another now empty, one gone, one more.
    changed = {**other, "00281050": {"vr": "DS", "Value": [1.5]}, "00400275": _DATASET["00081032"]}
    del changed["00200013"]
    _cut_alike({**changed, "00100020": {"vr": "LO"}})
    assert cut(b"{}") == pieces.Cut([], {}, {}, {})


def test_a_sequence_too_long_to_merge_is_left_to_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pieces, "_MAX_MERGED", 2)
    pieces._last = None
    long = {**_DATASET, "00081032": {"vr": "SQ", "Value": [_ITEM] * 4}}
    assert cut(_canonical(long)) is None
    assert cut_one_by_one(long).dataset == long


@pytest.mark.parametrize(
    "document",
    [
        orjson.dumps({"00200013": {"vr": "IS"}, "00080018": {"vr": "UI"}}),  # unsorted
        b'{"00080018":{"vr":"UI"},"00080018":{"vr":"UI"}}',  # twice
        b'{"00080018":{"vr": "UI"}}',
        b'{"00080018":{"Value":[1E2],"vr":"DS"}}',
        b'{"00080018":{"vr":"UI"}},{"00200013":{"vr":"IS"}}',
        b'{"00080018":["1.2"]}',
        b'{"00080018":{"vr":"UI"}',
        b"[]",
    ],
)
def test_anything_but_a_dataset_in_canonical_json_is_refused(document: bytes) -> None:
    for last in (None, cut(_canonical(_DATASET))):
        pieces._last = None if last is None else pieces._last
        assert cut(document) is None


def test_an_element_that_is_no_object_is_refused_one_by_one() -> None:
    with pytest.raises(ValueError, match="not an object"):
        cut_one_by_one({"00080018": ["1.2.3.4"]})  # type: ignore[dict-item]
