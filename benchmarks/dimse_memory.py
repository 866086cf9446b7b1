"""Peak memory of ``dwa listen`` receiving one large multi-frame instance from ``storescu``.

    .venv/bin/python benchmarks/dimse_memory.py [--size 500] [--associations 1] [--repeat 3]
        [--before /path/to/other/src]

A multi-frame instance of ``--size`` MB (512x512 16-bit frames, Explicit VR
Little Endian, :func:`~dicomweb_archive.demo.samples.write_multiframe`) is
sent by DCMTK's ``storescu``, ``--associations`` of them at once (each its own
instance), to a ``dwa listen`` started on a fresh archive each round.  The
listener's resident memory is read from ``/proc/PID/status``: ``VmRSS`` once it
answers C-ECHO (at rest), ``VmHWM`` (its peak since it started) once every
instance is stored.  ``--before SRC`` runs the same rounds, interleaved, with
the ``dicomweb_archive`` package of another source tree (``/work/main/src``:
the code before a change).  Medians of ``--repeat`` rounds, same run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from serve import ensure_program, free_port, git_state, version

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "src"
WORK = HERE / "work" / "dimse-memory"
AE_TITLE = "DWA"
#: Bytes of one 512x512 16-bit frame.
FRAME = 512 * 512 * 2


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/{pid}/status")


def echoes(port: int) -> bool:
    done = subprocess.run(
        ["echoscu", "-aec", AE_TITLE, "127.0.0.1", str(port)], capture_output=True, check=False
    )
    return done.returncode == 0


def generate(size_mb: int, count: int) -> list[Path]:
    """``count`` instances of ``size_mb`` MB, made once and kept in the work folder."""
    sys.path.insert(0, str(SOURCE))
    from dicomweb_archive.demo.samples import write_multiframe

    frames = max(1, size_mb * 1_000_000 // FRAME)
    made = []
    for seed in range(count):
        path = WORK / "inputs" / f"multiframe-{frames}-{seed}.dcm"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_multiframe(path.with_suffix(".part"), frames=frames, seed=seed)
            path.with_suffix(".part").rename(path)
        made.append(path)
    return made


def one_round(src: Path, inputs: list[Path], work: Path) -> tuple[float, float, float]:
    """At-rest and peak RSS (MB) of a listener from ``src``, and the seconds to store."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    port = free_port()
    command = [sys.executable, "-m", "dicomweb_archive.cli", "listen", str(work / "archive")]
    env = {**os.environ, "PYTHONPATH": str(src)}
    with open(work / "listen.log", "wb") as log:
        listener = subprocess.Popen(
            [*command, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + 60
        while not echoes(port):
            if time.monotonic() > deadline:
                raise SystemExit(f"dwa listen from {src} did not answer")
            time.sleep(0.2)
        at_rest = status_kb(listener.pid, "VmRSS")
        started = time.perf_counter()
        senders = [
            subprocess.Popen(
                ["storescu", "-aec", AE_TITLE, "127.0.0.1", str(port), str(path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for path in inputs
        ]
        for sender in senders:
            output = sender.communicate(timeout=1800)[0].decode(errors="replace")
            if sender.returncode != 0 or "E: " in output:
                raise SystemExit(f"storescu failed: {output}")
        took = time.perf_counter() - started
        peak = status_kb(listener.pid, "VmHWM")
    finally:
        listener.terminate()
        listener.wait(timeout=120)
    stored = (work / "listen.log").read_text().count("1 stored")
    if stored != len(inputs):
        raise SystemExit(f"{stored} of {len(inputs)} associations stored their instance")
    return at_rest / 1024, peak / 1024, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=500, help="MB of each instance")
    parser.add_argument("--associations", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another source tree to compare with")
    args = parser.parse_args()
    ensure_program("storescu", "dcmtk")
    inputs = generate(args.size, args.associations)
    size = inputs[0].stat().st_size
    trees = {"this tree": SOURCE}
    if args.before is not None:
        trees = {f"{args.before}": args.before, **trees}
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for number in range(args.repeat):
        for name, src in trees.items():
            subprocess.run(["sync"], check=False)
            at_rest, peak, took = one_round(src, inputs, WORK / "round")
            rows.setdefault(name, []).append((at_rest, peak, took))
            print(
                f"round {number + 1}: {name}: at rest {at_rest:.0f} MB, peak {peak:.0f} MB, "
                f"{took:.1f} s",
                file=sys.stderr,
            )
    shutil.rmtree(WORK / "round", ignore_errors=True)
    print(
        f"\n{datetime.date.today()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{version(['storescu', '--version'])}; {git_state()}; {args.associations} "
        f"association(s) at once, each one instance of {size / 1e6:.0f} MB "
        f"({size // FRAME} frames of 512x512x16 bits); median of {args.repeat}.\n"
    )
    print("| Listener | At rest MB | Peak MB | Peak − at rest MB | per MB received | Stored s |")
    print("|---|---:|---:|---:|---:|---:|")
    received = size * len(inputs) / 1e6
    for name, results in rows.items():
        at_rest = statistics.median(r[0] for r in results)
        peak = statistics.median(r[1] for r in results)
        growth = statistics.median(r[1] - r[0] for r in results)
        took = statistics.median(r[2] for r in results)
        print(
            f"| {name} | {at_rest:.0f} | {peak:.0f} | {growth:.0f} | "
            f"{growth / received:.2f} | {took:.1f} |"
        )


if __name__ == "__main__":
    main()
