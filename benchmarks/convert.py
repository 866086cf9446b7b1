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

``cp -r`` and the conversion on all cores run in turn, round by round (as
the ``--against`` trees do), and each round's ratio is reported too: a
shared machine's speed drifts by a quarter within minutes, so timings made
minutes apart would compare the machine with itself.

Times are wall-clock times of the whole command (and the CPU time of it and
its workers per instance, the steadier number on a shared machine), ``sync``
run before each timing, page cache left warm; ``dwa`` runs with its bytecode cached (under
``work/pycache``), as an installed package does.

Every timed run writes into a folder of its own, never one just emptied: on
ext4 without a journal, creating files right after deleting a large tree
costs several times more (the inode allocator skips each recently deleted
inode), which would charge whoever creates more files for the previous
round's cleanup.  Outputs are deleted after the last timing, so the folder's
file system needs room for all of them; ``--ext4-image`` instead makes a
journaled ext4 file system in a loop-mounted image for the outputs (root
only), where deleting the previous round's outputs first costs nothing
later, so it holds one round's.  ``--profile`` also profiles
one in-process conversion on one worker and prints the top entries.

``--against TREE`` compares this tree with another checkout (its ``src`` put
first on the path): the conversion on all cores and its re-run are timed for
both in turn, round after round (each round in the other order), so that both
meet the same load; each has an archive of its own.  With ``--indexed`` each
of those archives is made with a QIDO-RS index first (one other study
converted, then ``dwa index``; not timed), as an archive ``dwa serve`` has
served: the conversion then writes its studies' index rows too.
"""

from __future__ import annotations

import argparse
import contextlib
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
from pydicom.data import get_testdata_file

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


class Outputs:
    """A new folder for every timed run's output, under ``root``.

    ``reuse_space``: a run's output replaces the previous one of its kind, deleted
    before the timing (on a file system where that costs nothing afterwards);
    otherwise every output is kept until :meth:`clean`.
    """

    def __init__(self, root: Path, *, reuse_space: bool = False) -> None:
        self.root = root
        self.reuse_space = reuse_space
        self.made: dict[str, list[Path]] = {}

    def fresh(self, name: str) -> Callable[[], None]:
        """What runs before a timing: names ``name``'s next output (see :meth:`path`)."""

        def before() -> None:
            made = self.made.setdefault(name, [])
            if self.reuse_space:
                self.clean(name)
            path = self.root / f"{name}-{sum(map(len, self.made.values())) + 1}"
            shutil.rmtree(path, ignore_errors=True)  # a run stopped before its end
            made.append(path)

        return before

    def path(self, name: str) -> Path:
        """The output of ``name``'s run about to start, or of its last run."""
        return self.made[name][-1]

    def clean(self, name: str | None = None) -> None:
        """Delete the outputs of ``name``, or all."""
        for kind in [name] if name else list(self.made):
            for path in self.made.get(kind, []):
                shutil.rmtree(path, ignore_errors=True)
            self.made.get(kind, []).clear()


@contextlib.contextmanager
def ext4_image(size: int) -> Iterator[Path]:
    """A journaled ext4 file system of ``size`` bytes, loop-mounted, for the outputs."""
    image, mount = WORK / "outputs-ext4.img", WORK / "outputs-ext4"
    if os.geteuid() != 0:
        raise SystemExit("--ext4-image mounts a file system: run as root")
    mount.mkdir(exist_ok=True)
    with open(image, "wb") as fp:
        fp.truncate(size)
    try:
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
        try:
            yield mount
        finally:
            subprocess.run(["umount", str(mount)], check=True)
    finally:
        image.unlink()
        mount.rmdir()


def check_room(root: Path, needed: int) -> None:
    free = shutil.disk_usage(root).free
    if free < needed + 2 * 10**9:
        raise SystemExit(
            f"{root}: {free / 1e9:.1f} GB free, the outputs need {needed / 1e9:.1f} GB "
            "and 2 GB to spare: fewer --repeat, or --ext4-image"
        )


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
    #: Each run's wall-clock seconds, in the order run.
    walls: list[float]


def timed(
    cmd: Callable[[], list[str]],
    before: Callable[[], None],
    repeat: int,
    env: dict[str, str] = ENV,
) -> Timed:
    """Median wall-clock and CPU seconds of ``cmd()`` (called after ``before``)
    and the stdout of every run."""
    times, cpus, outputs = [], [], []
    for _ in range(repeat):
        before()
        os.sync()
        args = cmd()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(args, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime)
        if done.returncode:
            raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr.decode()}")
        outputs.append(done.stdout)
    return Timed(statistics.median(times), statistics.median(cpus), outputs, times)


#: One command of an alternation: its arguments, environment and what runs first.
Alternative = tuple[Callable[[], list[str]], dict[str, str], Callable[[], None]]


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
            [t.wall for t in done],
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


#: A table row: its name, runs, the converter's own seconds, and whether its runs
#: alternated with ``cp -r``'s round by round (then each round's ratio is known).
Row = tuple[str, Timed, float | None, bool]
COPY = "`cp -r`"


def against_rows(
    tree: Path,
    source: Path,
    outputs: Outputs,
    workers: int,
    count: int,
    repeat: int,
    copy: Alternative,
    indexed: bool = False,
) -> tuple[list[Row], Timed]:
    """The conversion on all cores and its re-run, this tree's and ``tree``'s in
    turn, the conversions round by round with ``copy`` (``cp -r``), which is
    returned too (``indexed``: into archives that have a QIDO-RS index)."""
    envs = {"this tree": ENV, str(tree): dwa_environment(tree)}
    names = {"this tree": "archive", str(tree): "archive-against"}

    def command(name: str) -> Callable[[], list[str]]:
        return lambda: convert_command(source, outputs.path(names[name]), workers)

    def before(name: str) -> Callable[[], None]:
        fresh = outputs.fresh(names[name])
        if not indexed:
            return fresh
        return lambda: (fresh(), with_index(outputs.path(names[name]), envs[name]))

    runs = {COPY: copy, **{name: (command(name), envs[name], before(name)) for name in envs}}
    converted = alternated(runs, repeat)
    again = alternated({name: (command(name), envs[name], lambda: None) for name in envs}, repeat)
    rows: list[Row] = []
    for name in envs:
        run = converted[name]
        rows.append(
            (
                f"`dwa convert` ({workers} workers), {name}",
                run,
                check(run.outputs, "converted", count),
                True,
            )
        )
        run = again[name]
        name = f"re-run, nothing to do, {name}"
        rows.append((name, run, check(run.outputs, "unchanged", count), False))
    return rows, converted[COPY]


def with_index(archive: Path, env: dict[str, str]) -> None:
    """Make ``archive`` with one study (not one of the sources') and its QIDO-RS index."""
    other = Path(get_testdata_file("CT_small.dcm"))
    for args in (convert_command(other, archive), [str(DWA), "index", str(archive)]):
        subprocess.run(args, check=True, capture_output=True, env=env)


def convert_command(source: Path, archive: Path, workers: int | None = None) -> list[str]:
    workers_args = [] if workers is None else ["-w", str(workers)]
    return [str(DWA), "convert", str(source), "-o", str(archive), "-q", "--json", *workers_args]


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
    parser.add_argument(
        "--indexed",
        action="store_true",
        help="with --against: into archives that have a QIDO-RS index (as dwa serve leaves)",
    )
    parser.add_argument(
        "--ext4-image",
        action="store_true",
        help="outputs on a journaled ext4 file system made for the run (loop mount, root)",
    )
    args = parser.parse_args()
    if not DWA.exists():
        raise SystemExit(f"{DWA} not found: install the package with the cli extra")

    subprocess.run([str(DWA), "--version"], check=True, stdout=subprocess.DEVNULL, env=ENV)
    source = generate(args.slices, args.rows, args.columns, args.studies)
    size = folder_bytes(source)
    # A copy and an archive or two (about the source's size each) per round.
    kinds = 3 if args.against else 2 if args.all_cores_only else 4
    with contextlib.ExitStack() as stack:
        if args.ext4_image:
            root = stack.enter_context(ext4_image(int(size * min(kinds, 3) * 1.3) + 2**30))
            outputs = Outputs(root, reuse_space=True)
            where = "a journaled ext4 file system made for the run (loop image)"
        else:
            check_room(WORK, size * kinds * args.repeat)
            outputs = Outputs(WORK)
            where = f"{WORK}'s file system ({file_system(WORK)})"
        stack.callback(outputs.clean)
        rows, cp, start, archive_size = measure(args, source, outputs)
        report(args, rows, cp, start, size, archive_size, where)
    if args.profile:
        print("\n```\n" + profile(source, WORK / "archive-profile", 30) + "```")


def file_system(path: Path) -> str:
    """The type of ``path``'s file system and whether ext4 has a journal there."""
    found = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", str(path)], capture_output=True, text=True
    ).stdout.split()
    if not found:
        return "unknown"
    kind, device = found[0], os.path.basename(found[1]) if len(found) > 1 else ""
    if kind == "ext4":
        journal = Path(f"/sys/fs/ext4/{device}/journal_task")
        if journal.exists() and journal.read_text().strip() == "<none>":
            return "ext4 without a journal"
    return kind


def measure(
    args: argparse.Namespace, source: Path, outputs: Outputs
) -> tuple[list[Row], Timed, Timed, int]:
    """Every row's runs: ``cp -r`` and the conversion on all cores in turn,
    round by round (so that both meet the same minutes of a shared machine),
    then the others."""
    count = args.slices * args.studies
    copy: Alternative = (
        lambda: ["cp", "-r", str(source), str(outputs.path("cp-destination"))],
        ENV,
        outputs.fresh("cp-destination"),
    )
    start = timed(lambda: [str(DWA), "--version"], lambda: None, args.repeat)
    if args.against is not None:
        rows, cp = against_rows(
            args.against, source, outputs, args.workers, count, args.repeat, copy, args.indexed
        )
        return [(COPY, cp, None, True), *rows], cp, start, folder_bytes(outputs.path("archive"))

    def convert(workers: int, *more: str) -> Callable[[], list[str]]:
        return lambda: [*convert_command(source, outputs.path("archive"), workers), *more]

    both = alternated(
        {COPY: copy, "convert": (convert(args.workers), ENV, outputs.fresh("archive"))},
        args.repeat,
    )
    cp, run = both[COPY], both["convert"]
    rows: list[Row] = [(COPY, cp, None, True)]
    name = f"`dwa convert` ({args.workers} workers)"
    rows.append((name, run, check(run.outputs, "converted", count), True))
    archive = outputs.path("archive")
    archive_size = folder_bytes(archive)
    before = snapshot(archive)
    run = timed(convert(args.workers), lambda: None, args.repeat)
    name = f"re-run, nothing to do ({args.workers} workers)"
    rows.append((name, run, check(run.outputs, "unchanged", count), False))
    if snapshot(archive) != before:
        raise SystemExit("the re-run changed the archive")
    if not args.all_cores_only:
        run = timed(convert(1), outputs.fresh("archive"), args.repeat)
        rows.append(("`dwa convert -w 1`", run, check(run.outputs, "converted", count), False))
        key = WORK / "deidentify.key"
        key.write_text("a benchmark's de-identification key\n")
        deidentify = convert(1, "--deidentify", "basic", "--key", str(key))
        run = timed(deidentify, outputs.fresh("archive"), args.repeat)
        name = "`dwa convert -w 1 --deidentify basic`"
        rows.append((name, run, check(run.outputs, "converted", count), False))
    return rows, cp, start, archive_size


def report(
    args: argparse.Namespace,
    rows: list[Row],
    cp: Timed,
    start: Timed,
    size: int,
    archive_size: int,
    where: str,
) -> None:
    """The table of ``rows`` (their ratios against ``cp``) and what was measured."""
    count = args.slices * args.studies
    print(
        f"{count} files, {size / 1e6:.0f} MB ({args.rows}x{args.columns} CT slices, "
        f"{args.studies} studies); archive {archive_size / 1e6:.0f} MB; "
        f"{datetime.date.today()}, {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}, "
        f"dicomweb-archive {__version__}; median of {args.repeat}; "
        f"`dwa` start-up {start.wall:.2f} s; load average {os.getloadavg()[0]:.1f}; "
        f"outputs on {where}, a new folder for every run\n"
    )
    header = ["Measurement", "Wall s", "Instances/s", "MB/s", "vs `cp -r`"]
    header += ["Converter s", "Instances/s (converter)", "CPU ms/instance"]
    print("| " + " | ".join(header) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, run, inner, _ in rows:
        ratio = cp.wall / run.wall
        extra = f"{inner:.2f} | {count / inner:,.0f}" if inner else " | "
        print(
            f"| {name} | {run.wall:.2f} | {count / run.wall:,.0f} | "
            f"{size / 1e6 / run.wall:,.0f} | {ratio:.2f} | {extra} | "
            f"{run.cpu / count * 1000:.2f} |"
        )
    paired = [(name, run) for name, run, _, alternated in rows if alternated and name != COPY]
    if paired:
        print("\nRound by round with `cp -r` (median of the rounds' ratios, lowest-highest):")
    for name, run in paired:
        ratios = [copy / wall for copy, wall in zip(cp.walls, run.walls, strict=True)]
        print(f"* {name}: {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
