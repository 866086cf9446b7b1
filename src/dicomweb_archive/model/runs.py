"""A series' instances in runs cut where their content says, and what a study's
aggregates count kept per run; pure, no IO.

A study's row, conflicts and shared attributes are counted over every instance
(:mod:`~dicomweb_archive.model.aggregate`).  Counted afresh at each refresh,
a study of thousands of instances costs thousands of steps however few
changed.  Here the instances, in their order, are cut into runs after each
instance whose mark (a CRC of its UID) has its low bits clear: about
:data:`RUN` instances each, and an inserted instance changes its own run,
not the boundaries after it.  What a count finds in one run is kept with the
run's first instance as long as the run holds the same instances; a refresh
merges the runs' findings in order, which gives what one pass over every
instance gives (the same groups, first members, sizes and shared elements).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dicomweb_archive.model.instance import Instance, interned, ordered

#: Instances a run holds on average (a power of two).
RUN = 32
#: One run: its instances, in their order.
Run = tuple[Instance, ...]
#: What groups alike instances: their signature over a set of keys.
Signature = Callable[[Instance, frozenset[str]], tuple[bytes | None, ...]]
#: Groups of alike instances: each signature's first instance and group size.
Groups = dict[tuple[bytes | None, ...], list[Any]]


def runs(instances: list[Instance]) -> list[Run]:
    """``instances`` cut after each instance whose mark says so."""
    mask = RUN - 1
    cuts = [n for n, instance in enumerate(instances, 1) if not instance.mark & mask]
    if not cuts or cuts[-1] != len(instances):
        cuts.append(len(instances))
    found, start = [], 0
    for end in cuts:
        found.append(tuple(instances[start:end]))
        start = end
    return found


def groups(
    runs_: Iterable[Run], keys: frozenset[str], signature: Signature
) -> list[tuple[Instance, int]]:
    """The first instance of each group of equal signatures over ``keys``, with
    the group's size, in the order of their first instances."""
    merged: Groups = {}
    kind, grouping = f"groups-{signature.__name__}", _grouping(signature)
    for run in runs_:
        for found, (first, size) in run[0].of_run(kind, keys, run, grouping).items():
            group = merged.get(found)
            if group is None:
                merged[found] = [first, size]
            else:
                group[1] += size
    return [(first, size) for first, size in merged.values()]


def _grouping(signature: Signature) -> Callable[[Run, frozenset[str]], Groups]:
    def grouped(run: Run, keys: frozenset[str]) -> Groups:
        found: Groups = {}
        for instance in run:
            group = found.get(signature_ := signature(instance, keys))
            if group is None:
                found[signature_] = [instance, 1]
            else:
                group[1] += 1
        return found

    return grouped


def shared_keys(runs_: list[Run]) -> frozenset[str]:
    """The keys of the elements every instance of the runs holds with the same
    value (as the first instance holds it)."""
    everything = frozenset[str]()
    first = runs_[0][0]
    keys = first.of_run("shared", everything, runs_[0], _shared_in_run)
    for run in runs_[1:]:
        keys = interned(keys & run[0].of_run("shared", everything, run, _shared_in_run))
        mine, theirs = first.elements_of(keys), run[0].elements_of(keys)
        if mine != theirs:
            agreed = zip(ordered(keys), mine, theirs, strict=True)
            keys = interned(frozenset(k for k, a, b in agreed if a == b))
    return keys


def _shared_in_run(run: Run, _: frozenset[str]) -> frozenset[str]:
    """The keys whose elements every instance of ``run`` holds as its first does."""
    first = run[0]
    # Equal canonical JSON is equal values (1 and 1.0 cannot both arise: each
    # element's VR fixes its number type).  The keys still shared narrow as
    # instances disagree, a few times early on; each instance after that is
    # one comparison of the canonical JSON it keeps for those keys.
    keys = interned(frozenset(first.elements))
    expected = first.elements_of(keys)
    for instance in run[1:]:
        found = instance.elements_of(keys)
        if found != expected:
            agreed = zip(ordered(keys), expected, found, strict=True)
            keys = interned(frozenset(k for k, a, b in agreed if a == b))
            expected = first.elements_of(keys)
    return keys
