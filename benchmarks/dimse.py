"""Receiving a CT over DIMSE: ``storescu`` into ``dwa listen``, STOW-RS, Orthanc's C-STORE.

    .venv/bin/python benchmarks/dimse.py [--slices 300] [--repeat 3]

The synthetic CT series of ``benchmarks/convert.py`` (300 slices of 512x512,
Explicit VR Little Endian) is sent, in each round and to a fresh, empty
archive each time:

* by DCMTK's ``storescu +sd`` (one association) into ``dwa listen``;
* by one STOW-RS request holding every file (multipart, streamed from the
  files) into ``dwa serve``;
* by the same ``storescu`` into Orthanc (Debian's ``orthanc``, started on
  loopback with a temporary configuration and storage folder, no plugins).

Each server is started and answering before the clock starts; the time is the
client's, until its last instance is acknowledged.  For ``dwa`` the study's
derived documents are written behind (the flusher); *until searchable* adds
the time until a search sees all of it (C-FIND for ``dwa listen``, QIDO-RS for
``dwa serve``); Orthanc indexes as it stores.  Every round checks that the
receiver holds every instance.  Medians of ``--repeat`` rounds, same run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from serve import ensure_program, free_port, git_state, version

from convert import WORK, generate

BOUNDARY = "dimse-benchmark-boundary"
AE_TITLE = "DWA"


def wait_for(ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not become ready")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def echoes(port: int, called: str) -> bool:
    done = subprocess.run(
        ["echoscu", "-aec", called, "127.0.0.1", str(port)], capture_output=True, check=False
    )
    return done.returncode == 0


@contextlib.contextmanager
def process(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as output:
        started = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield started
    finally:
        started.terminate()
        started.wait(timeout=60)


def storescu(port: int, called: str, source: Path) -> float:
    """Seconds ``storescu`` takes to send every file of ``source`` in one association."""
    started = time.perf_counter()
    done = subprocess.run(
        ["storescu", "-aec", called, "+sd", "127.0.0.1", str(port), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"storescu failed: {done.stdout}{done.stderr}")
    return took


def found_by_cfind(port: int) -> int:
    """Instances a C-FIND at the IMAGE level finds (``findscu -X`` writes each)."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            ["findscu", "-S", "-aec", AE_TITLE, "-X", "-od", out, "127.0.0.1", str(port),
             "-k", "QueryRetrieveLevel=IMAGE", "-k", "SOPInstanceUID"],
            capture_output=True,
            check=True,
        )  # fmt: skip
        return len(os.listdir(out))


def found_by_qido(root: str) -> int:
    try:
        with urllib.request.urlopen(f"{root}/instances?limit=10000", timeout=60) as response:
            return len(json.load(response))
    except OSError:
        return 0


def until(count: Callable[[], int], wanted: int) -> float:
    started = time.perf_counter()
    wait_for(lambda: count() >= wanted, "the search", timeout=600)
    return time.perf_counter() - started


def dwa(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "dicomweb_archive.cli", *arguments]


def round_listen(source: Path, slices: int, work: Path) -> tuple[float, float]:
    port = free_port()
    archive = work / "listen-archive"
    with process(dwa("listen", str(archive), "--port", str(port)), work / "listen.log"):
        wait_for(lambda: echoes(port, AE_TITLE), "dwa listen")
        took = storescu(port, AE_TITLE, source)
        searchable = until(lambda: found_by_cfind(port), slices)
    return took, took + searchable


def stow_body(files: list[Path]) -> Iterator[bytes]:
    for path in files:
        yield f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        yield path.read_bytes()
        yield b"\r\n"
    yield f"--{BOUNDARY}--\r\n".encode()


def round_stow(source: Path, slices: int, work: Path) -> tuple[float, float]:
    import http.client

    port = free_port()
    archive = work / "serve-archive"
    root = f"http://127.0.0.1:{port}/dicomweb"
    command = dwa("serve", str(archive), "--port", str(port), "--no-access-log")
    with process(command, work / "serve.log"):
        wait_for(lambda: answers(f"{root}/studies"), "dwa serve")
        files = sorted(source.iterdir())
        length = sum(len(chunk) for chunk in stow_body([])) + sum(
            len(f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n") + p.stat().st_size + 2
            for p in files
        )
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        connection.putrequest("POST", "/dicomweb/studies")
        connection.putheader(
            "Content-Type", f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
        )
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        for chunk in stow_body(files):
            connection.send(chunk)
        response = connection.getresponse()
        response.read()
        took = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"STOW-RS answered {response.status}")
        searchable = until(lambda: found_by_qido(root), slices)
    return took, took + searchable


def round_orthanc(binary: str, source: Path, slices: int, work: Path) -> tuple[float, float]:
    storage = work / "orthanc-storage"
    storage.mkdir()
    http_port, dicom_port = free_port(), free_port()
    config = work / "orthanc.json"
    config.write_text(
        json.dumps(
            {
                "Name": "benchmark",
                "StorageDirectory": str(storage),
                "IndexDirectory": str(storage),
                "Plugins": [],
                "HttpPort": http_port,
                "DicomPort": dicom_port,
                "DicomAet": "ORTHANC",
                "RemoteAccessAllowed": False,
                "AuthenticationEnabled": False,
                "HttpServerEnabled": True,
            }
        )
    )
    with process([binary, str(config)], work / "orthanc.log"):
        statistics_url = f"http://127.0.0.1:{http_port}/statistics"
        wait_for(lambda: answers(statistics_url), "Orthanc")
        wait_for(lambda: echoes(dicom_port, "ORTHANC"), "Orthanc's DICOM server")
        took = storescu(dicom_port, "ORTHANC", source)
        with urllib.request.urlopen(statistics_url) as response:
            stored = int(json.load(response)["CountInstances"])
        if stored != slices:
            raise SystemExit(f"Orthanc holds {stored} instances, not {slices}")
    return took, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--columns", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ensure_program("storescu", "dcmtk")
    orthanc = ensure_program("Orthanc", "orthanc")
    source = generate(args.slices, args.rows, args.columns)
    size = sum(p.stat().st_size for p in source.iterdir())
    rows: dict[str, list[tuple[float, float]]] = {}
    runs = {
        "`storescu` → `dwa listen`": lambda w: round_listen(source, args.slices, w),
        "STOW-RS (one request) → `dwa serve`": lambda w: round_stow(source, args.slices, w),
        "`storescu` → Orthanc": lambda w: round_orthanc(orthanc, source, args.slices, w),
    }
    for number in range(args.repeat):
        for name, run in runs.items():
            work = WORK / "dimse"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            subprocess.run(["sync"], check=False)
            took, searchable = run(work)
            rows.setdefault(name, []).append((took, searchable))
            print(f"round {number + 1}: {name}: {took:.2f} s", file=sys.stderr)
    baseline = statistics.median(t for t, _ in rows["`storescu` → Orthanc"])
    print(
        f"\n{datetime.date.today()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{version(['storescu', '--version'])}, {version([orthanc, '--version'])}; "
        f"{git_state()}; {args.slices} files of {args.rows}x{args.columns}, "
        f"{size / 1e6:.0f} MB; median of {args.repeat}.\n"
    )
    print("| Sender → receiver | Stored s | Instances/s | MB/s | vs Orthanc | Until searchable s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, results in rows.items():
        took = statistics.median(t for t, _ in results)
        searchable = statistics.median(s for _, s in results)
        print(
            f"| {name} | {took:.2f} | {args.slices / took:,.0f} | {size / 1e6 / took:,.0f} | "
            f"{baseline / took:.2f} | {searchable:.2f} |"
        )


if __name__ == "__main__":
    main()
