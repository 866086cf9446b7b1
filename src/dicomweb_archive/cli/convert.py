"""``dwa convert``."""

from __future__ import annotations

import sys
import time

import click
import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dicomweb_archive.cli.transcode import MODES, print_summary, run_transcoder
from dicomweb_archive.convert.converter import ConversionResult, Converter
from dicomweb_archive.convert.instance import InstanceOutcome
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.errors import DicomwebArchiveError
from dicomweb_archive.transcode.transcoder import TranscodeOptions, TranscodeResult
from dicomweb_archive.types import InstanceKey


class _RateColumn(TextColumn):
    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):  # type: ignore[no-untyped-def]
        speed = task.finished_speed or task.speed
        return f"{speed:,.0f} instances/s" if speed else ""


def _print_summary(console: Console, result: ConversionResult, archive: str) -> None:
    c = result.counts
    console.print(
        f"{c['converted']} converted, {c['updated']} updated, {c['unchanged']} unchanged, "
        f"{c['skipped']} skipped, {c['failed']} failed; {result.frames} frames, "
        f"{len(result.studies)} studies in {result.seconds:.2f} s "
        f"({result.instances_per_second:,.0f} instances/s) -> {archive}",
        highlight=False,
    )
    for o in result.skipped:
        console.print(f"skipped: {o.name}: {o.reason}", highlight=False, markup=False)
    for o in result.updated:
        console.print(
            f"replaced: {o.name}: instance {o.sop_instance_uid} was in the archive "
            "with different content",
            highlight=False,
            markup=False,
        )
    for conflict in result.conflicts:
        console.print(f"conflict: {conflict.message()}", highlight=False, markup=False)


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "archive",
    required=True,
    type=click.Path(file_okay=False),
    help="Archive folder (created if missing).",
)
@click.option(
    "--public-bulk-size",
    type=click.IntRange(min=0),
    default=131074,
    show_default=True,
    help="Public binary values above this many bytes become bulk data.",
)
@click.option(
    "--private-bulk-size",
    type=click.IntRange(min=0),
    default=64,
    show_default=True,
    help="Private binary values above this many bytes become bulk data.",
)
@click.option(
    "--frames",
    type=click.Choice(["multipart", "raw"]),
    default="multipart",
    show_default=True,
    help="Store frames wrapped as multipart/related (servable as-is) or bare.",
)
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: all cores).",
)
@click.option(
    "--htj2k",
    type=MODES,
    default=None,
    help="Also encode the converted frames as lossless HTJ2K RPCL: alongside (alternate) "
    "or in their place (primary); see dwa transcode.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def convert(
    inputs: tuple[str, ...],
    archive: str,
    public_bulk_size: int,
    private_bulk_size: int,
    frames: str,
    workers: int | None,
    htj2k: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Convert DICOM P10 INPUTS (files, folders, ZIP files, - for stdin) into ARCHIVE.

    Exit status: 0 when every input converted (or was skipped as a DICOMDIR),
    1 when some input failed, 2 on a usage error.
    """
    options = ConvertOptions(
        public_bulk_size=public_bulk_size,
        private_bulk_size=private_bulk_size,
        frames=frames,  # type: ignore[arg-type]
        workers=workers,
    )
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    show_progress = not quiet and err.is_terminal
    progress = Progress(
        TextColumn("converting"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not show_progress,
        transient=True,
        # No refresh thread: worker processes are forked, and forking a process
        # with threads can deadlock the child.  We refresh as outcomes arrive.
        auto_refresh=False,
    )
    task = progress.add_task("convert", total=None)
    last_refresh = 0.0
    instances: list[InstanceKey] = []

    def on_outcome(outcome: InstanceOutcome) -> None:
        nonlocal last_refresh
        progress.advance(task)
        if outcome.sop_instance_uid and outcome.status in ("converted", "updated", "unchanged"):
            instances.append(
                InstanceKey(
                    str(outcome.study_instance_uid),
                    str(outcome.series_instance_uid),
                    outcome.sop_instance_uid,
                )
            )
        if outcome.status == "failed":
            progress.console.print(f"failed: {outcome.name}: {outcome.reason}", markup=False)
        now = time.monotonic()
        if now - last_refresh > 0.1:
            progress.refresh()
            last_refresh = now

    try:
        with progress:
            result = Converter(archive, options).convert(
                inputs,
                on_total=lambda n: progress.update(task, total=n),
                on_outcome=on_outcome,
            )
        transcoded: TranscodeResult | None = None
        if htj2k:
            transcoded = run_transcoder(
                archive,
                TranscodeOptions(mode=htj2k, workers=workers),  # type: ignore[arg-type]
                err,
                instances=sorted(instances, key=str),
                show_progress=show_progress,
            )
    except DicomwebArchiveError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    if as_json:
        summary = result.to_json()
        if transcoded:
            summary["htj2k"] = transcoded.to_json()
        sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    console = err if as_json else Console(highlight=False, soft_wrap=True)
    _print_summary(console, result, archive)
    if transcoded:
        print_summary(console, transcoded)
    sys.exit(0 if result.ok and (transcoded is None or transcoded.ok) else 1)
