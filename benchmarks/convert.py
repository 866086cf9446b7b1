"""Conversion throughput against ``cp -r`` of the same files.

    .venv/bin/python benchmarks/convert.py [--slices 300] [--studies 1] [--workers N] [--profile]
    .venv/bin/python benchmarks/convert.py --studies 10 --all-cores-only --against ../main

Generates ``--studies`` synthetic CT studies of one series each
(``dicomweb_archive.samples``; ``--studies 10`` is the 3,000-slice case) into
``benchmarks/work/`` (kept between runs, same bytes for the same size), then
times, each ``--repeat`` times and reporting the median:

* ``cp -r`` of the source folder to a fresh destination;
* ``dwa convert -q`` into a fresh archive on all cores (or ``--workers``);
* ``dwa convert -q -w 1`` into a fresh archive;
* ``dwa convert -q -w 1 --deidentify basic`` into a fresh archive (PS3.15 Basic Profile);
* ``dwa convert -q`` again over a complete archive (must change nothing);
* ``dwa --version``: the command's start-up, included in every ``dwa`` row.

Times are wall-clock times of the whole command (and the CPU time of it and
its workers per instance, the steadier number on a shared machine), ``sync``
run before each timing, page cache left warm; ``dwa`` runs with its bytecode cached (under
``work/pycache``), as an installed package does.  ``--profile`` also profiles
one in-process conversion on one worker and prints the top entries.

``--against TREE`` compares this tree with another checkout (its ``src`` put
first on the path): the conversion on all cores and its re-run are timed for
both in turn, round after round (each round in the other order), so that both
meet the same load; each has an archive of its own.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import hashlib
import io
import os
import platform
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from dicomweb_archive import Converter, ConvertOptions, __version__
from dicomweb_archive.demo import samples

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
DWA = Path(sys.executable).parent / "dwa"


def generate(slices: int, rows: int, columns: int, studies: int = 1) -> Path:
    """The source studies, written again only when their size or generator changed.

    One study is a series in the folder itself; more are a folder each (one
    patient each, ``seed`` the study's number), the series as one study has it.
    """
    suffix = f"-{studies}studies" if studies > 1 else ""
    source = WORK / f"ct-{slices}x{rows}x{columns}{suffix}"
    stamp = WORK / f"{source.name}.complete"
    generator = hashlib.sha256(Path(samples.__file__).read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != generator:
        shutil.rmtree(source, ignore_errors=True)
        started = time.perf_counter()
        if studies == 1:
            samples.write_ct_series(source, slices=slices, rows=rows, columns=columns)
        for number in range(studies if studies > 1 else 0):
            samples.write_ct_series(
                source / f"study{number + 1:02d}",
                slices=slices,
                rows=rows,
                columns=columns,
                patient_id=f"DWA-BENCH-{number + 1}",
                seed=number,
            )
        took = time.perf_counter() - started
        print(
            f"generated {studies} x {slices} slices of {rows}x{columns} in {took:.1f} s",
            file=sys.stderr,
        )
        stamp.write_text(generator)
    return source


def fresh(path: Path) -> Callable[[], None]:
    return lambda: shutil.rmtree(path, ignore_errors=True)


def dwa_environment(tree: Path | None = None) -> dict[str, str]:
    """The environment of ``dwa``: bytecode cached (in ``work/``), as when installed;
    with ``tree``, that checkout's sources first on the path (and its own cache)."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(WORK / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if tree is not None:
        env["PYTHONPATH"] = str(tree.resolve() / "src")
        env["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache-against")
    return env


ENV = dwa_environment()


@dataclass
class Timed:
    """Medians of repeated runs of one command, and the stdout of every run."""

    wall: float
    #: User plus system CPU seconds of the command and every process it waited for.
    cpu: float
    outputs: list[bytes]


def timed(
    cmd: list[str], before: Callable[[], None], repeat: int, env: dict[str, str] = ENV
) -> Timed:
    """Median wall-clock and CPU seconds of ``cmd`` and the stdout of every run."""
    times, cpus, outputs = [], [], []
    for _ in range(repeat):
        before()
        os.sync()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime)
        if done.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr.decode()}")
        outputs.append(done.stdout)
    return Timed(statistics.median(times), statistics.median(cpus), outputs)


#: One command of an alternation: its arguments, environment and what runs first.
Alternative = tuple[list[str], dict[str, str], Callable[[], None]]


def alternated(commands: dict[str, Alternative], repeat: int) -> dict[str, Timed]:
    """:func:`timed` of each command, in turn, ``repeat`` rounds (every other one
    in reverse order): medians of runs made in the same minutes."""
    runs: dict[str, list[Timed]] = {name: [] for name in commands}
    for round_ in range(repeat):
        names = list(commands) if round_ % 2 == 0 else list(reversed(commands))
        for name in names:
            cmd, env, before = commands[name]
            runs[name].append(timed(cmd, before, 1, env))
    return {
        name: Timed(
            statistics.median(t.wall for t in done),
            statistics.median(t.cpu for t in done),
            [out for t in done for out in t.outputs],
        )
        for name, done in runs.items()
    }


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file of an archive outside its private ``.dwa``."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".dwa"]
        for name in files:
            stat = os.stat(os.path.join(folder, name))
            out[os.path.join(folder, name)] = (stat.st_mtime_ns, stat.st_size)
    return out


def folder_bytes(root: Path) -> int:
    return sum(size for _, size in snapshot(root).values())


def check(outputs: list[bytes], status: str, count: int) -> float:
    """Check every run's JSON summary; returns the median converter-reported time."""
    summaries = [orjson.loads(out) for out in outputs]
    for summary in summaries:
        if summary[status] != count or summary["failed"]:
            raise SystemExit(f"expected {count} {status}: {summary}")
    return float(statistics.median(s["seconds"] for s in summaries))


def profile(source: Path, target: Path, top: int) -> str:
    shutil.rmtree(target, ignore_errors=True)
    converter = Converter(target, ConvertOptions(workers=1))
    profiler = cProfile.Profile()
    profiler.enable()
    converter.convert([str(source)])
    profiler.disable()
    return profile_report(profiler, top)


def profile_report(profiler: cProfile.Profile, top: int) -> str:
    """cProfile's top entries by own and by cumulative time, paths shortened."""
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    site = sysconfig.get_paths()["purelib"]
    return text.getvalue().replace(f"{site}/", "").replace(f"{HERE.parent}/src/", "")


Row = tuple[str, Timed, float | None]


def against_rows(tree: Path, source: Path, workers: int, count: int, repeat: int) -> list[Row]:
    """The conversion on all cores and its re-run, this tree's and ``tree``'s in turn."""
    envs = {"this tree": ENV, str(tree): dwa_environment(tree)}
    archives = {"this tree": WORK / "archive", str(tree): WORK / "archive-against"}
    commands = {
        name: [str(DWA), "convert", str(source), "-o", str(archives[name]), "-q", "--json"]
        + ["-w", str(workers)]
        for name in envs
    }
    runs = {name: (commands[name], envs[name], fresh(archives[name])) for name in envs}
    converted = alternated(runs, repeat)
    again = alternated({name: (commands[name], envs[name], lambda: None) for name in envs}, repeat)
    rows: list[Row] = []
    for name in envs:
        run = converted[name]
        rows.append(
            (
                f"`dwa convert` ({workers} workers), {name}",
                run,
                check(run.outputs, "converted", count),
            )
        )
        run = again[name]
        rows.append((f"re-run, nothing to do, {name}", run, check(run.outputs, "unchanged", count)))
    shutil.rmtree(archives[str(tree)], ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300, help="slices per study")
    parser.add_argument("--studies", type=int, default=1, help="studies of one series each")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--columns", type=int, default=512)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also profile -w 1")
    parser.add_argument(
        "--all-cores-only",
        action="store_true",
        help="only cp -r, dwa convert on all cores and its re-run (no -w 1 rows)",
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout: its conversion on all cores and re-run alternate with this tree's",
    )
    args = parser.parse_args()
    if not DWA.exists():
        raise SystemExit(f"{DWA} not found: install the package with the cli extra")

    subprocess.run([str(DWA), "--version"], check=True, stdout=subprocess.DEVNULL, env=ENV)
    source = generate(args.slices, args.rows, args.columns, args.studies)
    count = args.slices * args.studies
    size = folder_bytes(source)
    copy, archive = WORK / "cp-destination", WORK / "archive"
    convert = [str(DWA), "convert", str(source), "-o", str(archive), "-q", "--json"]
    all_cores = [*convert, "-w", str(args.workers)]
    rows: list[Row] = []

    cp = timed(["cp", "-r", str(source), str(copy)], fresh(copy), args.repeat)
    rows.append(("`cp -r`", cp, None))
    start = timed([str(DWA), "--version"], lambda: None, args.repeat)
    if args.against is not None:
        rows += against_rows(args.against, source, args.workers, count, args.repeat)
        report(args, rows, cp, start, count, size, folder_bytes(archive))
        shutil.rmtree(copy, ignore_errors=True)
        return
    run = timed(all_cores, fresh(archive), args.repeat)
    rows.append(
        (f"`dwa convert` ({args.workers} workers)", run, check(run.outputs, "converted", count))
    )
    archive_size = folder_bytes(archive)
    if not args.all_cores_only:
        run = timed([*convert, "-w", "1"], fresh(archive), args.repeat)
        rows.append(("`dwa convert -w 1`", run, check(run.outputs, "converted", count)))
    before = snapshot(archive)
    run = timed(all_cores, lambda: None, args.repeat)
    name = f"re-run, nothing to do ({args.workers} workers)"
    rows.append((name, run, check(run.outputs, "unchanged", count)))
    if snapshot(archive) != before:
        raise SystemExit("the re-run changed the archive")
    if not args.all_cores_only:
        key = WORK / "deidentify.key"
        key.write_text("a benchmark's de-identification key\n")
        deidentify = [*convert, "-w", "1", "--deidentify", "basic", "--key", str(key)]
        run = timed(deidentify, fresh(archive), args.repeat)
        name = "`dwa convert -w 1 --deidentify basic`"
        rows.append((name, run, check(run.outputs, "converted", count)))
    shutil.rmtree(copy, ignore_errors=True)
    report(args, rows, cp, start, count, size, archive_size)
    if args.profile:
        print("\n```\n" + profile(source, WORK / "archive-profile", 30) + "```")


def report(
    args: argparse.Namespace,
    rows: list[Row],
    cp: Timed,
    start: Timed,
    count: int,
    size: int,
    archive_size: int,
) -> None:
    """The table of ``rows`` (their ratios against ``cp``) and what was measured."""
    print(
        f"{count} files, {size / 1e6:.0f} MB ({args.rows}x{args.columns} CT slices, "
        f"{args.studies} studies); archive {archive_size / 1e6:.0f} MB; "
        f"{datetime.date.today()}, {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}, "
        f"dicomweb-archive {__version__}; median of {args.repeat}; "
        f"`dwa` start-up {start.wall:.2f} s; load average {os.getloadavg()[0]:.1f}\n"
    )
    header = ["Measurement", "Wall s", "Instances/s", "MB/s", "vs `cp -r`"]
    header += ["Converter s", "Instances/s (converter)", "CPU ms/instance"]
    print("| " + " | ".join(header) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, run, inner in rows:
        ratio = cp.wall / run.wall
        extra = f"{inner:.2f} | {count / inner:,.0f}" if inner else " | "
        print(
            f"| {name} | {run.wall:.2f} | {count / run.wall:,.0f} | "
            f"{size / 1e6 / run.wall:,.0f} | {ratio:.2f} | {extra} | "
            f"{run.cpu / count * 1000:.2f} |"
        )


if __name__ == "__main__":
    main()
