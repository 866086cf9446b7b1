"""``dwa transcode``: HTJ2K frames for an existing archive (also ``dwa convert --htj2k``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable

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

from dicomweb_archive.errors import DicomwebArchiveError
from dicomweb_archive.transcode.instance import TranscodeOutcome
from dicomweb_archive.transcode.transcoder import TranscodeOptions, Transcoder, TranscodeResult
from dicomweb_archive.types import InstanceKey

MODES = click.Choice(["alternate", "primary"])


def run_transcoder(
    archive: str,
    options: TranscodeOptions,
    err: Console,
    *,
    instances: Iterable[InstanceKey] | None = None,
    show_progress: bool,
) -> TranscodeResult:
    """Transcode with a progress bar on ``err``; failures printed one per line."""
    progress = Progress(
        TextColumn("transcoding"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not show_progress,
        transient=True,
        # No refresh thread: workers are forked (see dwa convert).
        auto_refresh=False,
    )
    task = progress.add_task("transcode", total=None)
    last_refresh = 0.0

    def on_outcome(outcome: TranscodeOutcome) -> None:
        nonlocal last_refresh
        progress.advance(task)
        if outcome.status == "failed":
            progress.console.print(f"failed: {outcome.key}: {outcome.reason}", markup=False)
        now = time.monotonic()
        if now - last_refresh > 0.1:
            progress.refresh()
            last_refresh = now

    with progress:
        return Transcoder(archive, options).transcode(
            instances,
            on_total=lambda n: progress.update(task, total=n),
            on_outcome=on_outcome,
        )


def print_summary(console: Console, result: TranscodeResult) -> None:
    c = result.counts
    console.print(
        f"HTJ2K: {c['transcoded']} transcoded, {c['unchanged']} unchanged, "
        f"{c['skipped']} skipped, {c['failed']} failed, {c['none']} without frames; "
        f"{result.frames} frames, {result.bytes_in / 1e6:,.1f} MB -> "
        f"{result.bytes_out / 1e6:,.1f} MB ({result.compression_ratio:.2f}:1) "
        f"in {result.seconds:.2f} s",
        highlight=False,
        markup=False,
    )
    for outcome in result.skipped:
        console.print(f"skipped: {outcome.key}: {outcome.reason}", highlight=False, markup=False)


@click.command()
@click.argument("archive", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--mode",
    type=MODES,
    default="alternate",
    show_default=True,
    help="alternate: add htj2k/{n} beside each frame; primary: replace the frames.",
)
@click.option(
    "--lossy",
    "psnr",
    type=click.FloatRange(min=1.0, max=200.0),
    default=None,
    metavar="QUALITY",
    help=(
        "Lossy HTJ2K (1.2.840.10008.1.2.4.203) aiming at this PSNR in dB (e.g. 50); "
        "default: lossless HTJ2K RPCL (1.2.840.10008.1.2.4.202)."
    ),
)
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: all cores).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def transcode(
    archive: str,
    mode: str,
    psnr: float | None,
    workers: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Encode the frames of every instance in ARCHIVE as HTJ2K.

    Instances HTJ2K cannot hold (bit-packed or 32-bit samples, unusual colour
    models) are skipped with the reason.  Exit status: 0 when nothing failed,
    1 when some frame could not be decoded or written (its original is kept).
    """
    options = TranscodeOptions(mode=mode, psnr=psnr, workers=workers)  # type: ignore[arg-type]
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        result = run_transcoder(archive, options, err, show_progress=not quiet and err.is_terminal)
    except DicomwebArchiveError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(1)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    print_summary(err if as_json else Console(highlight=False, soft_wrap=True), result)
    sys.exit(0 if result.ok else 1)
