"""An archive in S3 (a real S3 API on loopback: moto) against one on the local disk.

    .venv/bin/python benchmarks/objectstore.py [--slices 60] [--workers 2] [--repeat 3]

Generates the synthetic CT series of ``benchmarks/convert.py`` (kept in
``benchmarks/work/``), starts ``moto_server`` on a free loopback port, then
measures, reporting medians of ``--repeat`` runs and the S3/local ratio:

* **convert**: ``Converter(...).convert()`` of the series into a fresh folder
  and into a fresh bucket, ``--workers`` processes;
* **store reads**: every frame located and read through the store
  (``DirectoryStore`` / ``ObjectStore``), one at a time: the latency the
  server adds nothing to; beside it a bare boto3 ``GetObject`` of the same
  objects, which is what the S3 API itself costs here;
* **serve**: ``dwa serve`` of each archive, every frame fetched over HTTP one
  at a time (latency median and p90) and by 8 clients at once (frames/s).

moto is a Python server on the same cores: its own time per request is most of
the S3 figures, so they bound what a real object store costs from above for
throughput and from below for latency (no network).  Results go to stdout as
JSON and as the table of ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx
import orjson

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from tests.objectstore import moto_server  # noqa: E402

from convert import generate  # noqa: E402
from dicomweb_archive import Converter, ConvertOptions  # noqa: E402
from dicomweb_archive.store.base import files_under  # noqa: E402
from dicomweb_archive.store.directory import DirectoryStore  # noqa: E402
from dicomweb_archive.store.objectstore import ObjectStore  # noqa: E402

WORK = HERE / "work" / "objectstore"
ACCEPT = {"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _p90(values: list[float]) -> float:
    return sorted(values)[int(0.9 * (len(values) - 1))]


def convert(source: Path, server: Any, workers: int, repeat: int) -> dict[str, Any]:
    local, remote = [], []
    for run in range(repeat):
        folder = WORK / f"local-{run}"
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        assert Converter(folder, ConvertOptions(workers=workers)).convert([str(source)]).ok
        local.append(time.perf_counter() - started)
        url = f"s3://{server.bucket('bench')}/archive"
        started = time.perf_counter()
        assert Converter(url, ConvertOptions(workers=workers)).convert([str(source)]).ok
        remote.append(time.perf_counter() - started)
    return {"local_s": _median(local), "s3_s": _median(remote), "runs": repeat}


def _frames(store: Any) -> list[str]:
    return [n for n in files_under(store, "studies") if "/frames/" in n]


def _timed(call: Callable[[str], object], names: list[str]) -> list[float]:
    times = []
    for name in names:
        started = time.perf_counter()
        call(name)
        times.append((time.perf_counter() - started) * 1000)
    return times


def store_reads(local: DirectoryStore, remote: ObjectStore, bucket: str) -> dict[str, Any]:
    names = _frames(local)

    def read(store: Any) -> Callable[[str], object]:
        return lambda name: store.locate(name).read()

    client = boto3.client("s3")

    def bare(name: str) -> object:
        return client.get_object(Bucket=bucket, Key=f"archive/{name}")["Body"].read()

    for call in (read(local), read(remote), bare):  # warm: page cache, connections
        _timed(call, names[:5])
    local_ms = _timed(read(local), names)
    s3_ms = _timed(read(remote), names)
    bare_ms = _timed(bare, names)
    return {
        "frames": len(names),
        "local_ms": _median(local_ms),
        "s3_ms": _median(s3_ms),
        "s3_p90_ms": _p90(s3_ms),
        "boto3_get_ms": _median(bare_ms),
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _serve(archive: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [sys.executable, "-m", "dicomweb_archive.cli", "serve", archive]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--no-access-log"], stderr=subprocess.DEVNULL
    )
    root = f"http://127.0.0.1:{port}/dicomweb"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"{root}/studies", timeout=60).raise_for_status()
            return process, root
        except httpx.TransportError:
            assert time.monotonic() < deadline, "dwa serve did not start"
            time.sleep(0.2)


def serve(archive: str, names: list[str], repeat: int) -> dict[str, Any]:
    process, root = _serve(archive)
    try:
        with httpx.Client(headers=ACCEPT, timeout=60) as client:

            def get(name: str) -> object:
                response = client.get(f"{root}/{name}")
                response.raise_for_status()
                return response.content

            _timed(get, names[:5])
            latencies = [_timed(get, names) for _ in range(repeat)]
            rates = []
            for _ in range(repeat):
                started = time.perf_counter()
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(get, names))
                rates.append(len(names) / (time.perf_counter() - started))
    finally:
        process.terminate()
        process.wait(30)
    flat = [t for run in latencies for t in run]
    return {"ms": _median(flat), "p90_ms": _p90(flat), "frames_per_s": _median(rates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=60)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--columns", type=int, default=512)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    source = generate(args.slices, args.rows, args.columns)
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    results: dict[str, Any] = {
        "slices": args.slices,
        "workers": args.workers,
        "cpus": os.cpu_count(),
    }
    with moto_server(WORK / "dwa-work") as server:
        results["convert"] = convert(source, server, args.workers, args.repeat)
        local = DirectoryStore(WORK / "local-0")
        bucket = server.bucket("serve")
        url = f"s3://{bucket}/archive"
        assert Converter(url, ConvertOptions(workers=args.workers)).convert([str(source)]).ok
        remote = ObjectStore(url)
        results["store_reads"] = store_reads(local, remote, bucket)
        names = _frames(local)
        results["serve_local"] = serve(str(local.root), names, args.repeat)
        results["serve_s3"] = serve(url, names, args.repeat)
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    print(table(results))


def table(r: dict[str, Any]) -> str:
    c, s, lo, s3 = r["convert"], r["store_reads"], r["serve_local"], r["serve_s3"]
    slices = r["slices"]
    rows = [
        "| measure | local disk | S3 (moto, loopback) | S3 / local |",
        "|---|---:|---:|---:|",
        f"| convert {slices} slices, {r['workers']} workers (s) | {c['local_s']:.2f} "
        f"| {c['s3_s']:.2f} | {c['s3_s'] / c['local_s']:.2f}× |",
        f"| convert (instances/s) | {slices / c['local_s']:.1f} | {slices / c['s3_s']:.1f} | |",
        f"| store read of one frame, median (ms) | {s['local_ms']:.2f} | {s['s3_ms']:.2f} "
        f"| {s['s3_ms'] / s['local_ms']:.0f}× |",
        f"| bare boto3 GetObject of one frame, median (ms) | | {s['boto3_get_ms']:.2f} | |",
        f"| dwa serve, one frame at a time, median (ms) | {lo['ms']:.2f} | {s3['ms']:.2f} "
        f"| {s3['ms'] / lo['ms']:.1f}× |",
        f"| dwa serve, p90 (ms) | {lo['p90_ms']:.2f} | {s3['p90_ms']:.2f} | |",
        f"| dwa serve, 8 clients (frames/s) | {lo['frames_per_s']:.0f} "
        f"| {s3['frames_per_s']:.0f} | {s3['frames_per_s'] / lo['frames_per_s']:.2f}× |",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
