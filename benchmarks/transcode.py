"""HTJ2K transcoding throughput against imagecodecs' encoder alone.

    .venv/bin/python benchmarks/transcode.py [--slices 300] [--workers N] [--repeat 3]

Generates (or reuses) the synthetic CT series of ``benchmarks/convert.py``,
converts it once into ``benchmarks/work/transcode-source``, then, in one run,
times each of these ``--repeat`` times and reports the median:

* imagecodecs' ``htj2k_encode`` called directly, on all cores (a fork
  ``multiprocessing.Pool``), on the same frames already decoded in memory and
  with the same parameters ``dwa transcode`` uses: the encoder's own cost;
* ``dwa transcode`` (alternate, lossless) of a fresh copy of the archive;
* ``dwa transcode --mode primary`` of a fresh copy;
* ``dwa transcode`` again over a transcoded archive (must change nothing).

It reports the throughput ratio (encoder alone over ``dwa transcode``; the
target is at least 0.8), the compression ratio, and the fraction of each
frame's bytes a client needs for the first displayable image: the codestream
up to the end of the tile-part of the largest resolution at most 64 pixels on
each side, which is checked to decode.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import imagecodecs
import numpy as np
import orjson

from dicomweb_archive import __version__
from dicomweb_archive.codec import codestream
from dicomweb_archive.codec.decode import ImagePixel, decode_frame
from dicomweb_archive.codec.htj2k import decomposition_levels
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.transcode.transcoder import archive_instances

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert import DWA, ENV, WORK, folder_bytes, generate, snapshot

_FRAMES: list[np.ndarray] = []


def decoded_frames(archive: Path) -> list[np.ndarray]:
    """Every frame of the archive, decoded, in instance order."""
    store = open_archive(archive)
    out = []
    for key in archive_instances(store):
        [meta] = store.read_json_gz(paths.instance_metadata(*key))
        image = ImagePixel.from_metadata(meta)
        syntax = meta["00083002"]["Value"][0]
        for number in range(1, image.number_of_frames + 1):
            body = store.read(paths.frame_path(*key, number))
            out.append(decode_frame(multipart.unwrap(body)[1], syntax, image).pixels)
    return out


def _encode(index: int) -> bytes:
    pixels = _FRAMES[index]
    return bytes(
        imagecodecs.htj2k_encode(
            pixels,
            None,
            rgb=False,
            planar=False,
            resolutions=decomposition_levels(*pixels.shape[:2]),
            reversible=True,
            tlm=True,
            tilepart=imagecodecs.HTJ2K.TILEPART.RESOLUTIONS,
        )
    )


def encoder_alone(frames: list[np.ndarray], workers: int, repeat: int) -> tuple[float, list[bytes]]:
    """Median seconds of encoding every frame on ``workers`` processes (pool start included)."""
    _FRAMES[:] = frames
    times, out = [], []
    context = multiprocessing.get_context("fork")
    for _ in range(repeat):
        started = time.perf_counter()
        with context.Pool(workers) as pool:
            out = pool.map(
                _encode, range(len(frames)), chunksize=max(1, len(frames) // (workers * 8))
            )
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def timed(cmd: list[str], before: Callable[[], None], repeat: int) -> tuple[float, float, dict]:
    """Median wall seconds, median self-reported seconds, and the last JSON summary."""
    walls, inner, summary = [], [], {}
    for _ in range(repeat):
        before()
        os.sync()
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, env=ENV)
        walls.append(time.perf_counter() - started)
        if done.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr.decode()}")
        summary = orjson.loads(done.stdout)
        inner.append(summary["seconds"])
    return statistics.median(walls), statistics.median(inner), summary


def fresh_copy(source: Path, target: Path) -> Callable[[], None]:
    def copy() -> None:
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target, symlinks=True)

    return copy


def first_image(archive: Path, folder: str) -> tuple[list[float], list[float], int]:
    """Per frame: fraction of the codestream and of the stored body for the first image."""
    store = open_archive(archive)
    codestream_fractions, body_fractions, smallest = [], [], 0
    for key in archive_instances(store):
        instance = paths.instance_dir(*key)
        for entry in sorted(os.scandir(archive / instance / folder), key=lambda e: e.name):
            body = Path(entry.path).read_bytes()
            _, data = multipart.unwrap(body)
            header = codestream.parse(data)
            resolution = header.smallest_resolution_within(64)
            assert resolution is not None
            prefix = header.resolution_prefix(resolution)
            assert prefix is not None
            smallest = max(header.resolution_size(resolution))
            codestream_fractions.append(prefix / len(data))
            body_fractions.append((body.index(data) + prefix) / len(body))
    # The prefix is a decodable image: check one.
    decoded = imagecodecs.htj2k_decode(
        data[:prefix] + b"\xff\xd9", skipres=header.levels - resolution
    )
    assert max(decoded.shape) == smallest
    return codestream_fractions, body_fractions, smallest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--columns", type=int, default=512)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not DWA.exists():
        raise SystemExit(f"{DWA} not found: install the package with the cli extra")

    series = generate(args.slices, args.rows, args.columns)
    source = WORK / "transcode-source"
    if (
        not (source / paths.MANIFEST).exists()
        or len(archive_instances(open_archive(source))) != args.slices
    ):
        shutil.rmtree(source, ignore_errors=True)
        subprocess.run(
            [str(DWA), "convert", str(series), "-o", str(source), "-q"], check=True, env=ENV
        )
    start_s = statistics.median(_wall([str(DWA), "--version"]) for _ in range(args.repeat))
    frames = decoded_frames(source)
    raw_bytes = sum(f.nbytes for f in frames)
    alone_s, encoded = encoder_alone(frames, args.workers, args.repeat)
    alone_bytes = sum(len(e) for e in encoded)

    target = WORK / "transcode-archive"
    command = [str(DWA), "transcode", str(target), "-q", "--json", "-w", str(args.workers)]
    rows = []
    wall, inner, summary = timed(command, fresh_copy(source, target), args.repeat)
    if summary["transcoded"] != len(frames) or summary["bytesOut"] != alone_bytes:
        raise SystemExit(f"dwa transcode did not write what the encoder alone wrote: {summary}")
    rows.append(("`dwa transcode` (alternate)", wall, inner))
    fractions, body_fractions, smallest = first_image(target, paths.HTJ2K)
    before = snapshot(target)
    wall_again, inner_again, again = timed(command, lambda: None, args.repeat)
    if again["unchanged"] != len(frames) or snapshot(target) != before:
        raise SystemExit(f"the re-run changed the archive: {again}")
    wall_primary, inner_primary, primary = timed(
        [*command, "--mode", "primary"], fresh_copy(source, target), args.repeat
    )
    rows.append(("`dwa transcode --mode primary`", wall_primary, inner_primary))
    rows.append(("re-run over a transcoded archive", wall_again, inner_again))
    archive_size = folder_bytes(target)
    shutil.rmtree(target, ignore_errors=True)

    print(
        f"{len(frames)} frames of {args.rows}x{args.columns} (16-bit CT), "
        f"{raw_bytes / 1e6:.0f} MB decoded; {datetime.date.today()}, {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), {args.workers} workers, "
        f"Python {platform.python_version()}, {imagecodecs.htj2k_version()}, "
        f"dicomweb-archive {__version__}; median of {args.repeat}; "
        f"`dwa` start-up {start_s:.2f} s\n"
    )
    header = ["Measurement", "Wall s", "Frames/s", "Transcoder s"]
    header += ["Encoder alone / this (wall)", "(transcoder)"]
    print("| " + " | ".join(header) + " |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| imagecodecs `htj2k_encode` alone, Pool of {args.workers} | {alone_s:.2f} | "
        f"{len(frames) / alone_s:,.0f} |  | 1.00 | 1.00 |"
    )
    for name, wall_s, inner_s in rows:
        print(
            f"| {name} | {wall_s:.2f} | {len(frames) / wall_s:,.0f} | {inner_s:.2f} | "
            f"{alone_s / wall_s:.2f} | {alone_s / inner_s:.2f} |"
        )
    print(
        f"\nCompression (lossless): {raw_bytes / alone_bytes:.2f}:1 "
        f"({raw_bytes / 1e6:.1f} MB -> {alone_bytes / 1e6:.1f} MB of codestreams); "
        f"archive after primary {archive_size / 1e6:.0f} MB "
        f"(stored frames {primary['bytesIn'] / 1e6:.0f} MB -> "
        f"{primary['bytesOut'] / 1e6:.0f} MB).\n"
        f"First displayable image ({smallest} px): median {statistics.median(fractions):.1%} "
        f"of the codestream (max {max(fractions):.1%}), "
        f"{statistics.median(body_fractions):.1%} of the stored body "
        f"(max {max(body_fractions):.1%})."
    )


def _wall(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
