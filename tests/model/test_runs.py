"""Runs of instances: what is counted per run and merged equals one pass over all."""

from __future__ import annotations

import random
from typing import Any

from dicomweb_archive.model import runs as runs_module
from dicomweb_archive.model.instance import Instance
from dicomweb_archive.model.runs import RUN, groups, runs, shared_keys

_KEYS = frozenset({"00100020", "00080060", "00200011"})


def _instance(chance: random.Random, n: int) -> Instance:
    ds: dict[str, Any] = {"00080018": {"vr": "UI", "Value": [f"1.2.{n}"]}}
    for key in sorted(_KEYS):
        draw = chance.random()
        if draw < 0.1:
            continue  # absent
        ds[key] = {"vr": "LO"} if draw < 0.2 else {"vr": "LO", "Value": [chance.choice("AAAB")]}
    return Instance.of(ds)


def _groups_in_one_pass(instances: list[Instance]) -> list[tuple[Instance, int]]:
    found: dict[tuple[bytes | None, ...], list[Any]] = {}
    for instance in instances:
        found.setdefault(instance.elements_of(_KEYS), [instance, 0])[1] += 1
    return [(first, size) for first, size in found.values()]


def _shared_in_one_pass(instances: list[Instance]) -> frozenset[str]:
    first = instances[0]
    return frozenset(
        key
        for key, digest in first.elements.items()
        if all(i.elements.get(key) == digest for i in instances)
    )


def test_runs_cut_where_the_marks_say_and_hold_every_instance() -> None:
    chance = random.Random(1)
    instances = [_instance(chance, n) for n in range(300)]
    cut = runs(instances)
    assert [i for run in cut for i in run] == instances
    assert all(not run[-1].mark & (RUN - 1) for run in cut[:-1])
    assert 300 / RUN / 3 < len(cut) < 300 / RUN * 3
    # An instance inserted changes its own run only.
    more = [*instances[:150], _instance(chance, 1000), *instances[150:]]
    assert len(set(runs(more)) - set(cut)) <= 2


def test_merged_runs_count_as_one_pass(monkeypatch: Any) -> None:
    chance = random.Random(2)
    instances = [_instance(chance, n) for n in range(200)]
    made: list[int] = []
    grouping = runs_module._grouping

    def counted(signature: Any) -> Any:
        make = grouping(signature)
        return lambda run, keys: made.append(len(run)) or make(run, keys)

    monkeypatch.setattr(runs_module, "_grouping", counted)
    for _ in range(20):
        cut = runs(instances)
        assert groups(cut, _KEYS, Instance.elements_of) == _groups_in_one_pass(instances)
        assert shared_keys(cut) == _shared_in_one_pass(instances)
        made.clear()
        n = chance.randrange(len(instances))
        if chance.random() < 0.5:
            del instances[n]
        else:
            instances.insert(n, _instance(chance, 1000 + n))
    # Only the runs that changed were counted again.
    cut = runs(instances)
    groups(cut, _KEYS, Instance.elements_of)
    assert 0 < len(made) <= 2
