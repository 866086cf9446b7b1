"""Copies: inputs of one run that carry the same SOP Instance UID.

Workers store inputs in whatever order they take them, so when two inputs of a
run are one instance (a copy, or another version of it), which one the archive
keeps would depend on the workers.  A run on one core stores them in input
order: the last one wins, and the stored info names the first of the identical
copies it ends with.  :class:`Copies` notes every stored input's instance as
outcomes arrive; afterwards each instance stored by several inputs (and changed
by the run) is stored again from its inputs, in input order, by one task
(:meth:`Copies.replay`), so any number of workers, here or on a cluster, ends
with the bytes of a run on one core, and each input reports what it did there.

Under the ``reject`` policy a worker's copy refused as a duplicate counts among
the copies too: when the run created the instance, the replay stores the first
input again over whatever copy a worker stored first (overwriting the run's own
copy, under another study or series too), then refuses or keeps the others in
input order, as one core does.  Copies are told apart by SOP Instance UID alone,
since a copy under another study or series is the same instance.

One case is not replayed exactly: an instance that was in the archive before the
run, whose first copy in the run equals it while a later copy differs, ends with
the first copy's name (not the earlier source's) in its info.
"""

from __future__ import annotations

import dataclasses

from dicomweb_archive.convert.inputs import Source
from dicomweb_archive.convert.instance import REPLACED, InstanceOutcome
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.convert.task import convert_into
from dicomweb_archive.store.archive import open_archive

#: Inputs of one instance in input order: (place in the run, input).
Group = tuple[bool, list[tuple[int, Source]]]
Replayed = list[tuple[int, InstanceOutcome]]


class Copies:
    """The stored inputs of a run by instance; see the module."""

    def __init__(self, refs: list[Source]) -> None:
        self.refs = refs
        self._first: dict[str, tuple[int, InstanceOutcome]] = {}
        self._copies: dict[str, list[tuple[int, InstanceOutcome]]] = {}
        self._studies: set[str] = set()

    def add(self, index: int, outcome: InstanceOutcome) -> None:
        """Note the outcome of input ``index`` (those that stored nothing are ignored,
        but for copies refused as duplicates)."""
        key = outcome.key
        if key is None or (outcome.status == "failed" and not outcome.duplicate):
            return
        if not outcome.duplicate:
            self._studies.add(key.study_instance_uid)
        sop = key.sop_instance_uid
        first = self._first.setdefault(sop, (index, outcome))
        if first[0] != index:
            self._copies.setdefault(sop, [first]).append((index, outcome))

    def studies(self) -> set[str]:
        """The studies of every stored input, and of every copy a replay stores."""
        replayed = {
            outcome.key.study_instance_uid
            for copies in self._replayed()
            for _, outcome in copies
            if outcome.key is not None
        }
        return self._studies | replayed

    def outcome(self, index: int) -> InstanceOutcome:
        """The outcome noted for input ``index``, one of the copies."""
        for copies in self._copies.values():
            for place, outcome in copies:
                if place == index:
                    return outcome
        raise KeyError(index)

    def groups(self) -> list[Group]:
        """Each instance to store again: whether the run created it, and its inputs."""
        found = []
        for copies in self._replayed():
            created = any(outcome.status == "converted" for _, outcome in copies)
            found.append((created, [(index, self.refs[index]) for index, _ in sorted(copies)]))
        return sorted(found, key=lambda group: group[1][0][0])

    def _replayed(self) -> list[list[tuple[int, InstanceOutcome]]]:
        """The copies of each instance a worker stored (``converted`` or ``updated``)."""
        # Every copy unchanged or refused: the archive's instance did not move.
        return [
            copies
            for copies in self._copies.values()
            if any(outcome.status in ("converted", "updated") for _, outcome in copies)
        ]

    @staticmethod
    def replay(location: str, options: ConvertOptions, group: Group) -> Replayed:
        """Store one instance's inputs in input order (a worker's task)."""
        created, inputs = group
        # What the run created, its first input stores over whatever copy a
        # worker stored first, whatever the policy (it is the run's own copy).
        first = dataclasses.replace(options, on_duplicate="overwrite") if created else options
        replayed = []
        with open_archive(location) as archive:
            for place, (index, ref) in enumerate(inputs):
                # The first names itself: it is what a run on one core stored first.
                outcome = convert_into(
                    archive, first if place == 0 else options, ref, own_source=place == 0
                )
                if place == 0 and created and outcome.status in ("updated", "unchanged"):
                    outcome.status = "converted"
                    outcome.warnings = [w for w in outcome.warnings if not w.startswith(REPLACED)]
                replayed.append((index, outcome))
        return replayed

    @staticmethod
    def lost(group: Group, reason: str) -> Replayed:
        """Each input of a group whose worker died: failed (a rerun orders them)."""
        return [
            (
                index,
                InstanceOutcome(ref.name, "failed", reason=f"not stored in input order: {reason}"),
            )
            for index, ref in group[1]
        ]
