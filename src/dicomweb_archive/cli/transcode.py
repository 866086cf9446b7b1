"""``dwa transcode``: HTJ2K frames for an existing archive (also ``dwa convert --htj2k``)."""

from __future__ import annotations

import sys
from collections.abc import Iterable

import click
import orjson
from rich.console import Console

from dicomweb_archive.cli.console import plain_console
from dicomweb_archive.cli.options import (
    HTJ2K_MODES,
    ArchiveLocation,
    json_option,
    quiet_option,
    workers_option,
)
from dicomweb_archive.cli.progress import ProgressBar
from dicomweb_archive.transcode.instance import TranscodeOutcome
from dicomweb_archive.transcode.transcoder import TranscodeOptions, Transcoder, TranscodeResult
from dicomweb_archive.types import InstanceKey


def run_transcoder(
    archive: str,
    options: TranscodeOptions,
    err: Console,
    *,
    instances: Iterable[InstanceKey] | None = None,
    show_progress: bool,
) -> TranscodeResult:
    """Transcode with a progress bar on ``err``; failures printed one per line."""
    with ProgressBar("transcoding", err, enabled=show_progress) as bar:

        def on_outcome(outcome: TranscodeOutcome) -> None:
            failed = outcome.status == "failed"
            bar.advance(f"{outcome.key}: {outcome.reason}" if failed else None)

        return Transcoder(archive, options).transcode(
            instances, on_total=bar.set_total, on_outcome=on_outcome
        )


def print_summary(console: Console, result: TranscodeResult) -> None:
    c = result.counts
    console.print(
        f"HTJ2K: {c['transcoded']} transcoded, {c['unchanged']} unchanged, "
        f"{c['skipped']} skipped, {c['failed']} failed, {c['none']} without frames; "
        f"{result.frames} frames, {result.bytes_in / 1e6:,.1f} MB -> "
        f"{result.bytes_out / 1e6:,.1f} MB ({result.compression_ratio:.2f}:1) "
        f"in {result.seconds:.2f} s"
    )
    for outcome in result.skipped:
        console.print(f"skipped: {outcome.key}: {outcome.reason}")


@click.command()
@click.argument("archive", type=ArchiveLocation(exists=True))
@click.option(
    "--mode",
    type=HTJ2K_MODES,
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
@workers_option
@json_option
@quiet_option
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
    1 when some frame could not be decoded or written (its original is kept),
    or when every instance with frames was skipped (nothing could be done).
    """
    options = TranscodeOptions(mode=mode, psnr=psnr, workers=workers)  # type: ignore[arg-type]
    err = plain_console(stderr=True)
    result = run_transcoder(archive, options, err, show_progress=not quiet and err.is_terminal)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    print_summary(err if as_json else plain_console(), result)
    sys.exit(0 if result.ok and not result.all_skipped else 1)
