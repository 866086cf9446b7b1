"""``dwa convert``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
import orjson
from rich.console import Console

from dicomweb_archive.batch import Runner
from dicomweb_archive.cli.console import plain_console
from dicomweb_archive.cli.options import (
    HTJ2K_MODES,
    ArchiveLocation,
    dataset_options,
    dataset_transforms,
    json_option,
    on_duplicate_option,
    qido_fields_option,
    quiet_option,
    workers_option,
)
from dicomweb_archive.cli.printable import printable
from dicomweb_archive.cli.progress import ProgressBar
from dicomweb_archive.convert.converter import ConversionResult, Converter, OnOutcome, OnTotal
from dicomweb_archive.convert.instance import InstanceOutcome
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.p10 import quiet_pydicom
from dicomweb_archive.pool import keep_freed_memory
from dicomweb_archive.types import InstanceKey

if TYPE_CHECKING:  # --htj2k only: transcoding is imported when asked for
    from dicomweb_archive.transcode.transcoder import TranscodeResult

#: Outcomes whose instance is in the archive afterwards (what --htj2k transcodes).
_STORED = ("converted", "updated", "unchanged")


def _print_summary(console: Console, result: ConversionResult, archive: str) -> None:
    c = result.counts
    console.print(
        f"{c['converted']} converted, {c['updated']} updated, {c['unchanged']} unchanged, "
        f"{c['skipped']} skipped, {c['failed']} failed; {result.frames} frames, "
        f"{len(result.studies)} studies in {result.seconds:.2f} s "
        f"({result.instances_per_second:,.0f} instances/s) -> {printable(archive)}"
    )
    for o in result.skipped:
        console.print(f"skipped: {_line(o)}")
    for o in result.updated:
        for warning in o.warnings or ["replaced the instance stored with other content"]:
            console.print(f"replaced: {printable(o.name)}: {printable(warning)}")
    for conflict in result.conflicts:
        console.print(f"conflict: {printable(conflict.message())}")


def _line(outcome: InstanceOutcome) -> str:
    """``name: reason`` on one line, whatever characters the name holds."""
    return f"{printable(outcome.name)}: {printable(outcome.reason or '')}"


def run_converter(
    run: Callable[[OnTotal, OnOutcome], ConversionResult],
    err: Console,
    *,
    show_progress: bool,
) -> tuple[ConversionResult, list[InstanceKey]]:
    """``run`` with a progress bar on ``err``; failures printed one per line as they come.

    Returns the result and the instances in the archive afterwards.
    """
    instances: list[InstanceKey] = []
    with ProgressBar("converting", err, enabled=show_progress) as bar:

        def on_outcome(outcome: InstanceOutcome) -> None:
            if outcome.key is not None and outcome.status in _STORED:
                instances.append(outcome.key)
            failed = outcome.status == "failed"
            bar.advance(_line(outcome) if failed else None)

        return run(bar.set_total, on_outcome), instances


def report(
    result: ConversionResult,
    archive: str,
    err: Console,
    *,
    as_json: bool,
    transcoded: TranscodeResult | None = None,
) -> None:
    """The summary: on standard output, or JSON there and the summary on ``err``."""
    if as_json:
        summary = result.to_json()
        if transcoded:
            summary["htj2k"] = transcoded.to_json()
        sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    console = err if as_json else plain_console()
    _print_summary(console, result, archive)
    if transcoded:
        from dicomweb_archive.cli.transcode import print_summary

        print_summary(console, transcoded)


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    "archive",
    required=True,
    type=ArchiveLocation(),
    help="Archive folder or s3://bucket/prefix (created if missing).",
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
@qido_fields_option
@workers_option
@click.option(
    "--scheduler",
    metavar="tcp://HOST:PORT",
    help="Run the conversion on this Dask cluster (the cluster extra); its workers "
    "must reach the inputs and the archive at the same paths.",
)
@click.option(
    "--local-cluster",
    type=click.IntRange(min=1),
    metavar="N",
    help="Start a Dask cluster of N worker processes here and run the conversion on it.",
)
@click.option(
    "--htj2k",
    type=HTJ2K_MODES,
    default=None,
    help="Also encode the converted frames as lossless HTJ2K RPCL: alongside (alternate) "
    "or in their place (primary); see dwa transcode.",
)
@dataset_options()
@on_duplicate_option
@json_option
@quiet_option
def convert(
    inputs: tuple[str, ...],
    archive: str,
    public_bulk_size: int,
    private_bulk_size: int,
    frames: str,
    qido_fields: tuple[str, ...] | None,
    workers: int | None,
    scheduler: str | None,
    local_cluster: int | None,
    htj2k: str | None,
    on_duplicate: str | None,
    as_json: bool,
    quiet: bool,
    **dataset: Any,
) -> None:
    """Convert DICOM P10 INPUTS (files, folders, ZIP files, - for stdin) into ARCHIVE.

    Exit status: 0 when every input converted (or was skipped as a DICOMDIR),
    1 when some input failed, 2 on a usage error.
    """
    if scheduler and local_cluster:
        raise click.UsageError("give --scheduler or --local-cluster, not both")
    if workers and (scheduler or local_cluster):
        raise click.UsageError("--workers counts processes here; a cluster has its own workers")
    options = ConvertOptions(
        public_bulk_size=public_bulk_size,
        private_bulk_size=private_bulk_size,
        frames=frames,  # type: ignore[arg-type]
        workers=workers,
        qido_fields=qido_fields or (),
        **dataset_transforms(**dataset),
        on_duplicate=on_duplicate,  # type: ignore[arg-type]
    )
    err = plain_console(stderr=True)
    show_progress = not quiet and err.is_terminal
    keep_freed_memory()  # here and in the workers, forked from here
    with contextlib.ExitStack() as stack:
        runner: Runner | None = None
        if scheduler or local_cluster:
            from dicomweb_archive import cluster

            runner = stack.enter_context(
                cluster.connect(scheduler, local_cluster, setup=quiet_pydicom)
            )
        result, instances = run_converter(
            lambda on_total, on_outcome: Converter(archive, options, runner=runner).convert(
                inputs, on_total=on_total, on_outcome=on_outcome
            ),
            err,
            show_progress=show_progress,
        )
    transcoded: TranscodeResult | None = None
    if htj2k:
        from dicomweb_archive.cli.transcode import run_transcoder
        from dicomweb_archive.transcode.transcoder import TranscodeOptions

        transcoded = run_transcoder(
            archive,
            TranscodeOptions(mode=htj2k, workers=workers),  # type: ignore[arg-type]
            err,
            instances=sorted(instances, key=str),
            show_progress=show_progress,
        )
    report(result, archive, err, as_json=as_json, transcoded=transcoded)
    sys.exit(0 if result.ok and (transcoded is None or transcoded.ok) else 1)
