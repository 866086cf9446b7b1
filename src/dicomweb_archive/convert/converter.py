"""Convert many inputs into one archive, on every core, then refresh the studies."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dicomweb_archive.batch import Summary, failure_of, run_tasks
from dicomweb_archive.convert.inputs import InputRef, Spool, UnreadableInput, expand, os_reason
from dicomweb_archive.convert.instance import InstanceOutcome, Status, store_instance
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.errors import ArchiveError, NotDicomError
from dicomweb_archive.model.aggregate import Conflict
from dicomweb_archive.p10.reader import read_instance
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.base import scratch_folder
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.manifest import ensure
from dicomweb_archive.store.staging import recover_staged

#: Called once the inputs are counted, with their number.
OnTotal = Callable[[int], None]
#: Called for every input as it finishes.
OnOutcome = Callable[[InstanceOutcome], None]


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
                {"input": o.name, "sopInstanceUID": o.sop_instance_uid} for o in self.updated
            ],
            "conflicts": [c.to_json() for c in self.conflicts],
        }


def convert_input(location: str, options: ConvertOptions, ref: InputRef) -> InstanceOutcome:
    """Convert one input (a worker's task); every failure becomes an outcome."""
    try:
        with open_archive(location) as archive, ref.open() as fp:
            return store_instance(archive, options, read_instance(fp, ref.name))
    except Exception as exc:  # one bad input must not stop the others
        failure = failure_of(exc, ref.name)
        # Found in a folder or ZIP file beside the DICOM files (a README): skipped.
        refused = failure.refused or (ref.contained and isinstance(exc, NotDicomError))
        return InstanceOutcome(ref.name, "skipped" if refused else "failed", reason=failure.reason)


class Converter:
    """Converts P10 inputs into the archive at ``location`` (a folder or a URL).

    >>> Converter("archive").convert(["scans/"])  # doctest: +SKIP
    """

    def __init__(self, location: str | os.PathLike[str], options: ConvertOptions | None = None):
        self.location = os.fspath(location)
        self.options = options or ConvertOptions()

    def convert(
        self,
        inputs: Iterable[str],
        *,
        on_total: OnTotal | None = None,
        on_outcome: OnOutcome | None = None,
    ) -> ConversionResult:
        """Convert every input; never raises for a bad input, see the result."""
        started = time.perf_counter()
        result = ConversionResult()
        try:
            with open_archive(self.location) as archive:
                ensure(archive.store, self.options.archive_options())
                catalog = Catalog(archive)
                # Finish the updates a killed run committed but did not apply.
                catalog.instances_written(recover_staged(archive))
                with Spool(scratch_folder(archive.store)) as spool:
                    self._convert_inputs(list(inputs), spool, catalog, result, on_total, on_outcome)
                refreshed = catalog.refresh()
            result.conflicts, result.studies = refreshed.conflicts, refreshed.studies
        except OSError as exc:
            raise ArchiveError(
                f"cannot write the archive {self.location}: {os_reason(exc)}"
            ) from exc
        result.seconds = time.perf_counter() - started
        return result

    def _convert_inputs(
        self,
        inputs: list[str],
        spool: Spool,
        catalog: Catalog,
        result: ConversionResult,
        on_total: OnTotal | None,
        on_outcome: OnOutcome | None,
    ) -> None:
        refs: list[InputRef] = []
        for item in expand(inputs, spool):
            if isinstance(item, UnreadableInput):
                status: Status = "skipped" if item.skipped else "failed"
                outcome = InstanceOutcome(item.name, status, reason=item.reason)
                result.add(outcome)
                if on_outcome:
                    on_outcome(outcome)
            else:
                refs.append(item)
        if on_total:
            on_total(len(refs) + len(result.failures) + len(result.skipped))
        task = functools.partial(convert_input, self.location, self.options)
        for outcome in run_tasks(task, refs, self.options.worker_count()):
            result.add(outcome)
            if outcome.key is not None and outcome.status != "failed":
                catalog.instances_written([outcome.key])
            if on_outcome:
                on_outcome(outcome)
