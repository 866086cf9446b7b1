"""Transcode an archive's instances to HTJ2K on every core, then refresh the studies.

>>> Transcoder("archive", TranscodeOptions(mode="primary")).transcode()  # doctest: +SKIP

Each instance is one task (:mod:`dicomweb_archive.transcode.instance`); a primary
transcoding changes instance metadata, so the touched studies' documents and
the QIDO index are rebuilt afterwards, as after a conversion.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from dicomweb_archive.batch import Summary
from dicomweb_archive.codec.htj2k import HTJ2KSettings
from dicomweb_archive.pool import run_tasks, worker_count
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.manifest import read_options
from dicomweb_archive.transcode.instance import (
    Mode,
    TranscodeOutcome,
    TranscodeRequest,
    transcode_instance,
)
from dicomweb_archive.types import InstanceKey

__all__ = ["TranscodeOptions", "TranscodeResult", "Transcoder"]

#: Called once the instances are counted, with their number.
OnTotal = Callable[[int], None]
#: Called for every instance as it finishes.
OnOutcome = Callable[[TranscodeOutcome], None]


@dataclass(frozen=True)
class TranscodeOptions:
    #: ``alternate``: add ``htj2k/{n}`` beside the frames; ``primary``: replace them.
    mode: Mode = "alternate"
    #: ``None``: lossless (HTJ2K Lossless RPCL); else lossy HTJ2K at this target PSNR (dB).
    psnr: float | None = None
    #: Worker processes; ``None`` uses every core.
    workers: int | None = None

    def worker_count(self) -> int:
        return worker_count(self.workers)


@dataclass
class TranscodeResult(Summary[TranscodeOutcome]):
    """The summary of one transcoding run."""

    #: The studies with an instance transcoded now, sorted.
    studies: list[str] = field(default_factory=list)
    frames: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    @property
    def compression_ratio(self) -> float:
        """Stored frame bytes over HTJ2K bytes, for the instances transcoded now."""
        return self.bytes_in / self.bytes_out if self.bytes_out else 0.0

    @property
    def all_skipped(self) -> bool:
        """Every instance with frames was skipped: nothing asked for could be done."""
        done = self.counts["transcoded"] + self.counts["unchanged"]
        return bool(self.counts["skipped"]) and not done

    def add(self, outcome: TranscodeOutcome) -> None:
        super().add(outcome)
        if outcome.status == "transcoded":
            self.frames += outcome.frames
            self.bytes_in += outcome.bytes_in
            self.bytes_out += outcome.bytes_out

    def to_json(self) -> dict[str, Any]:
        return {
            "transcoded": self.counts["transcoded"],
            "unchanged": self.counts["unchanged"],
            "skipped": self.counts["skipped"],
            "failed": self.counts["failed"],
            "withoutFrames": self.counts["none"],
            "frames": self.frames,
            "bytesIn": self.bytes_in,
            "bytesOut": self.bytes_out,
            "compressionRatio": round(self.compression_ratio, 3),
            "seconds": round(self.seconds, 3),
            "studies": self.studies,
            "failures": [{"instance": str(o.key), "reason": o.reason} for o in self.failures],
            "skippedInstances": [
                {"instance": str(o.key), "reason": o.reason} for o in self.skipped
            ],
        }


class Transcoder:
    """Transcodes the frames of the archive at ``location`` (a folder or a URL) to HTJ2K."""

    def __init__(
        self, location: str | os.PathLike[str], options: TranscodeOptions | None = None
    ) -> None:
        self.location = os.fspath(location)
        self.options = options or TranscodeOptions()

    def transcode(
        self,
        instances: Iterable[InstanceKey] | None = None,
        *,
        on_total: OnTotal | None = None,
        on_outcome: OnOutcome | None = None,
    ) -> TranscodeResult:
        """Transcode ``instances`` (default: all); never raises for one bad instance."""
        started = time.perf_counter()
        with open_archive(self.location) as archive:
            result = self._transcode(archive, instances, on_total, on_outcome)
        result.seconds = time.perf_counter() - started
        return result

    def _transcode(
        self,
        archive: Archive,
        instances: Iterable[InstanceKey] | None,
        on_total: OnTotal | None,
        on_outcome: OnOutcome | None,
    ) -> TranscodeResult:
        options = read_options(archive)
        request = TranscodeRequest(
            mode=self.options.mode,
            settings=HTJ2KSettings(psnr=self.options.psnr),
            raw_frames=options.frames == "raw",
        )
        keys = list(instances if instances is not None else archive.instance_keys())
        if on_total:
            on_total(len(keys))
        result = TranscodeResult()
        catalog = Catalog(archive)
        touched = False
        studies: set[str] = set()
        task = functools.partial(transcode_instance, self.location, request)
        for outcome in run_tasks(task, keys, self.options.worker_count(), _lost):
            result.add(outcome)
            if outcome.status == "transcoded":
                studies.add(outcome.key.study_instance_uid)
            if outcome.metadata_changed:
                catalog.instances_written([outcome.key])
                touched = True
            if on_outcome:
                on_outcome(outcome)
        if touched:
            studies.update(catalog.refresh().studies)
        result.studies = sorted(studies)
        return result


def _lost(key: InstanceKey, reason: str) -> TranscodeOutcome:
    """The outcome of an instance whose worker died transcoding it."""
    return TranscodeOutcome(key, "failed", f"not transcoded: {reason}")
