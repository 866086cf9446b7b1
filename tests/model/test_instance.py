"""What an instance keeps between refreshes: made once, made again when its basis changes."""

from __future__ import annotations

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
