"""Convert many inputs into one archive, on every core or a cluster, then refresh the studies.

A run has three steps, each a set of tasks on the :class:`~dicomweb_archive.batch.Runner`
(worker processes here, or a Dask cluster):

1. **map**: every input is stored by :func:`store_instance` on a worker, straight
   into the archive; the outcomes come back as tasks finish (the progress bar).
2. **copies**: inputs that carry one SOP Instance UID (copies, or different
   versions of one instance) were stored in whatever order the workers took
   them; each such instance is stored again from its inputs in input order, in
   one task, so the archive ends as a run on one core leaves it, whatever the
   workers and the cluster.
3. **reduce**: the derived documents of every touched study are built once, a
   task per group of studies, then the archive's study list once, here.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dicomweb_archive.batch import Runner, Summary
from dicomweb_archive.convert.copies import Copies
from dicomweb_archive.convert.inputs import (
    InputRef,
    Source,
    Spool,
    UnreadableInput,
    anchored,
    expand,
    os_reason,
)
from dicomweb_archive.convert.instance import InstanceOutcome, Status
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.convert.task import (
    convert_numbered,
    lost_input,
    release_task_archive,
    task_archive,
    task_index,
)
from dicomweb_archive.errors import ArchiveError
from dicomweb_archive.model.aggregate import Conflict
from dicomweb_archive.pool import PoolRunner
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.base import scratch_folder
from dicomweb_archive.store.catalog import BATCH, Catalog, Refreshed
from dicomweb_archive.store.correction import finish_corrections
from dicomweb_archive.store.manifest import ensure
from dicomweb_archive.store.removal import finish_deletions
from dicomweb_archive.store.staging import recover_staged
from dicomweb_archive.store.url import is_url

#: Called once the inputs are counted, with their number.
OnTotal = Callable[[int], None]
#: Called for every input as it finishes.
OnOutcome = Callable[[InstanceOutcome], None]
#: Finds the inputs of a run (files may be spooled into the run's spool).
Inputs = Callable[[Spool], Iterable[Source | UnreadableInput]]


@dataclass
class ConversionResult(Summary[InstanceOutcome]):
    """The summary of one conversion run."""

    updated: list[InstanceOutcome] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    studies: list[str] = field(default_factory=list)
    frames: int = 0
    bytes_read: int = 0

    @property
    def instances(self) -> int:
        return sum(self.counts[s] for s in ("converted", "updated", "unchanged"))

    @property
    def instances_per_second(self) -> float:
        return self.instances / self.seconds if self.seconds else 0.0

    def add(self, outcome: InstanceOutcome) -> None:
        super().add(outcome)
        self.frames += outcome.frames
        self.bytes_read += outcome.size
        if outcome.status == "updated":
            self.updated.append(outcome)

    def replace(self, old: InstanceOutcome, new: InstanceOutcome) -> None:
        """``new`` instead of ``old``, an outcome added before."""
        self.counts[old.status] -= 1
        for kept in (self.failures, self.skipped, self.updated):
            kept[:] = [o for o in kept if o is not old]
        self.frames -= old.frames
        self.bytes_read -= old.size
        self.add(new)

    def sort(self, place: Callable[[InstanceOutcome], int]) -> None:
        """Order the listed outcomes by ``place`` (their inputs' order), as one core would."""
        for kept in (self.failures, self.skipped, self.updated):
            kept.sort(key=place)

    def to_json(self) -> dict[str, Any]:
        return {
            "converted": self.counts["converted"],
            "updated": self.counts["updated"],
            "unchanged": self.counts["unchanged"],
            "skipped": self.counts["skipped"],
            "failed": self.counts["failed"],
            "frames": self.frames,
            "bytesRead": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "instancesPerSecond": round(self.instances_per_second, 1),
            "studies": self.studies,
            "failures": [{"input": o.name, "reason": o.reason} for o in self.failures],
            "skippedInputs": [{"input": o.name, "reason": o.reason} for o in self.skipped],
            "updatedInstances": [
                {"input": o.name, "sopInstanceUID": o.sop_instance_uid, "warnings": o.warnings}
                for o in self.updated
            ],
            "conflicts": [c.to_json() for c in self.conflicts],
        }


def settle_studies(location: str, studies: Sequence[str]) -> Refreshed:
    """Build the derived documents of ``studies`` (a worker's task in the reduce)."""
    return Catalog(task_archive(location), index=task_index(location)).settle(studies)


class Converter:
    """Converts P10 inputs into the archive at ``location`` (a folder or a URL).

    Tasks run on ``runner`` (default: ``options.workers`` processes here).

    >>> Converter("archive").convert(["scans/"])  # doctest: +SKIP
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        options: ConvertOptions | None = None,
        *,
        runner: Runner | None = None,
    ):
        self.location = os.fspath(location)
        self.options = options or ConvertOptions()
        self.runner = runner or PoolRunner(self.options.worker_count())
        # Workers elsewhere (a cluster's) have working folders of their own.
        self._shared = self.location if is_url(self.location) else os.path.abspath(self.location)

    def convert(
        self,
        inputs: Iterable[str],
        *,
        on_total: OnTotal | None = None,
        on_outcome: OnOutcome | None = None,
    ) -> ConversionResult:
        """Convert every input; never raises for a bad input, see the result."""
        names = list(inputs)
        return self.run(lambda spool: expand(names, spool), on_total, on_outcome)

    def run(
        self,
        inputs: Inputs,
        on_total: OnTotal | None = None,
        on_outcome: OnOutcome | None = None,
    ) -> ConversionResult:
        """Convert what ``inputs`` finds (given the run's spool); see :meth:`convert`."""
        started = time.perf_counter()
        result = ConversionResult()
        try:
            with open_archive(self.location) as archive:
                ensure(archive.store, self.options.archive_options())
                # Finish the updates a killed run committed but did not apply.
                touched = {key.study_instance_uid for key in recover_staged(archive)}
                finish_deletions(archive)  # and what a killed dwa delete or update left
                finish_corrections(archive)
                with Spool(scratch_folder(archive.store)) as spool:
                    touched |= self._convert_inputs(inputs(spool), result, on_total, on_outcome)
                refreshed = self._refresh(Catalog(archive), sorted(touched))
                # A worker killed during the run (its tasks ran again elsewhere)
                # leaves its temporary files: gone with their writer.
                archive.store.remove_stale_temporaries()
            result.conflicts, result.studies = refreshed.conflicts, refreshed.studies
        except OSError as exc:
            raise ArchiveError(
                f"cannot write the archive {self.location}: {os_reason(exc)}"
            ) from exc
        finally:
            release_task_archive()  # when the tasks ran here
        result.seconds = time.perf_counter() - started
        return result

    def _convert_inputs(
        self,
        inputs: Iterable[Source | UnreadableInput],
        result: ConversionResult,
        on_total: OnTotal | None,
        on_outcome: OnOutcome | None,
    ) -> set[str]:
        """Store every input (map, then copies); returns the studies touched."""
        refs: list[Source] = []
        for item in inputs:
            if isinstance(item, UnreadableInput):
                status: Status = "skipped" if item.skipped else "failed"
                outcome = InstanceOutcome(item.name, status, reason=item.reason)
                result.add(outcome)
                if on_outcome:
                    on_outcome(outcome)
            else:
                refs.append(anchored(item) if isinstance(item, InputRef) else item)
        if on_total:
            on_total(len(refs) + len(result.failures) + len(result.skipped))
        copies = Copies(refs)
        # Each outcome's input, to list them in input order: those of unreadable
        # inputs first (-1), as a run on one core does.
        places: dict[int, int] = {}
        task = functools.partial(convert_numbered, self._shared, self.options)
        for index, outcome in self.runner.map(task, list(enumerate(refs)), lost_input):
            copies.add(index, outcome)
            result.add(outcome)
            places[id(outcome)] = index
            if on_outcome:
                on_outcome(outcome)
        replay = functools.partial(Copies.replay, self._shared, self.options)
        for replayed in self.runner.map(replay, copies.groups(), Copies.lost):
            for index, outcome in replayed:
                result.replace(copies.outcome(index), outcome)
                places[id(outcome)] = index
        result.sort(lambda outcome: places.get(id(outcome), -1))
        return copies.studies()

    def _refresh(self, catalog: Catalog, studies: list[str]) -> Refreshed:
        """The reduce: each study's documents built once, then the study list once."""
        # Rounded down: a few studies go one per task, spread evenly over the workers.
        size = max(1, min(BATCH, len(studies) // (self.runner.workers * 4)))
        groups = [studies[start : start + size] for start in range(0, len(studies), size)]

        def settle_here(group: Sequence[str], reason: str) -> Refreshed:
            return catalog.settle(group)  # its worker died: do it here

        task = functools.partial(settle_studies, self._shared)
        # Workers here mark their studies for the study list (the final refresh
        # lists them) and write their index rows in the work area this process
        # reads.  Workers on other machines have work areas of their own (an
        # object store's journal and index are local): list and index the
        # studies here.
        local = self.runner.local
        indexed = local and catalog.has_index()
        done = sorted(self.runner.map(task, groups, settle_here), key=lambda r: r.studies[:1])
        if not local:
            catalog.studies_moved(studies)
        elif not indexed:
            catalog.index_studies(studies)  # an index made meanwhile may have missed them
        # Studies left stale by other writers meanwhile.
        final = catalog.refresh()
        return Refreshed(
            sorted({*studies, *final.studies}),
            [c for refreshed in [*done, final] for c in refreshed.conflicts],
        )
