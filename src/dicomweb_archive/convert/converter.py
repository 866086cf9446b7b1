"""Convert many inputs into one archive, on every core, then refresh the studies."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicomweb_archive.batch import Summary, failure_of, run_tasks
from dicomweb_archive.convert.inputs import InputRef, UnreadableInput, expand
from dicomweb_archive.convert.instance import InstanceOutcome, store_instance
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.convert.studies import update_studies_index, update_study
from dicomweb_archive.model import paths
from dicomweb_archive.model.aggregate import Conflict
from dicomweb_archive.p10.reader import read_instance
from dicomweb_archive.store.directory import Archive
from dicomweb_archive.store.index import INDEX_FILE, QidoIndex
from dicomweb_archive.store.manifest import ensure

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


def convert_input(root: str, options: ConvertOptions, ref: InputRef) -> InstanceOutcome:
    """Convert one input (a worker's task); every failure becomes an outcome."""
    try:
        with ref.open() as fp:
            return store_instance(Archive(root), options, read_instance(fp, ref.name))
    except Exception as exc:  # one bad input must not stop the others
        failure = failure_of(exc, ref.name)
        return InstanceOutcome(
            ref.name, "skipped" if failure.refused else "failed", reason=failure.reason
        )


class Converter:
    """Converts P10 inputs into the archive at ``root``.

    >>> Converter("archive").convert(["scans/"])  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike[str], options: ConvertOptions | None = None):
        self.root = str(Path(root))
        self.options = options or ConvertOptions()
        self.archive = Archive(self.root)

    def convert(
        self,
        inputs: Iterable[str],
        *,
        on_total: OnTotal | None = None,
        on_outcome: OnOutcome | None = None,
    ) -> ConversionResult:
        """Convert every input; never raises for a bad input, see the result."""
        started = time.perf_counter()
        ensure(self.archive, self.options.archive_options())
        result = ConversionResult()
        spool = str(self.archive.path(".dwa/tmp"))
        refs: list[InputRef] = []
        for item in expand(list(inputs), spool):
            if isinstance(item, UnreadableInput):
                outcome = InstanceOutcome(item.name, "failed", reason=item.reason)
                result.add(outcome)
                if on_outcome:
                    on_outcome(outcome)
            else:
                refs.append(item)
        if on_total:
            on_total(len(refs) + result.counts["failed"])
        touched: set[str] = set()
        try:
            task = functools.partial(convert_input, self.root, self.options)
            for outcome in run_tasks(task, refs, self.options.worker_count()):
                result.add(outcome)
                if outcome.study_instance_uid and outcome.status != "failed":
                    touched.add(outcome.study_instance_uid)
                if on_outcome:
                    on_outcome(outcome)
        finally:
            for ref in refs:
                if ref.member is None and ref.path.startswith(spool + os.sep):
                    os.unlink(ref.path)
        result.conflicts, result.studies = self.refresh(touched)
        result.seconds = time.perf_counter() - started
        return result

    def refresh(self, studies: Iterable[str]) -> tuple[list[Conflict], list[str]]:
        """Rewrite the derived documents of ``studies`` and the studies index."""
        conflicts: list[Conflict] = []
        rows = {}
        ordered = sorted(set(studies))
        for study in ordered:
            row, found = update_study(self.archive, study)
            rows[study] = row
            conflicts.extend(found)
        if rows or not self.archive.exists(paths.STUDIES_INDEX):
            update_studies_index(self.archive, rows)
        index_path = self.archive.path(f"{paths.WORK_DIR}/{INDEX_FILE}")
        if ordered and index_path.exists():
            with QidoIndex(self.archive) as index:
                index.update_studies(ordered)
        return conflicts, ordered
