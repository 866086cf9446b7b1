"""Packed studies: ``dwa serve`` from a study ZIP against the same study as a folder.

    .venv/bin/python benchmarks/pack.py [--quick] [--repeat 5] [--duration 10]

Converts the synthetic CT series of ``benchmarks/convert.py`` (300 slices of
512x512 by default) into a folder archive, packs it into a second archive with
``dwa pack --all -o`` (one ``studies/{st}.zip``), starts ``dwa serve`` on each
(one process each, on its own loopback port), checks that both answer the same
bytes, and then measures, in ``--repeat`` interleaved rounds (the order of the
two servers alternates from round to round), reporting medians:

* single-frame WADO-RS GETs cycling over all instances, 25 in flight, OHIF's
  ``Accept``: measured with ``wrk`` exactly as ``benchmarks/serve.py`` does
  (its functions are imported): requests/s, latency, server CPU per request;
* the series metadata (gzip passed through), one at a time and six in flight;
* the whole study as ``application/zip`` (``GET /dicomweb/studies/{st}``,
  fetched by ``curl`` into ``/dev/null``): MB/s, CPU time of the server and
  its peak resident memory during the download (``VmHWM``, reset before it);
* baselines in the same rounds, page cache warm: reading the 300 source files
  in Python, ``cat`` of them into a pipe, and Info-ZIP's ``zip -0`` of them
  into a pipe; and, in this process, the parts of the server's work: the
  project's ``zip_stream`` over the source files' bytes, regenerating the 300
  P10 files from each archive, and both together (a download without HTTP).

Before the load every frame and the metadata must answer 200 with exactly the
folder archive's stored bytes from both servers, and a download from each must
be a ZIP of 300 members that parse with pydicom, one per source file, with the
source's pixel data; ``transfer-syntax=*`` and Explicit VR Little Endian (the
source's syntax) must give the same members.  Every later download must have
exactly the checked size.  ``--profile`` also prints cProfile's top entries for
one in-process ZIP of the folder study (regeneration and ``zip_stream``).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import hashlib
import http.client
import importlib.metadata
import io
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import serve
from serve import (
    FRAME_CONCURRENCY,
    FRAME_HEADERS,
    JSON_HEADERS,
    Load,
    Server,
    Targets,
    Workload,
    check_frames,
    check_metadata,
    children_cpu,
    ensure_program,
    free_port,
    git_state,
    load_arguments,
    parse_load_arguments,
    python_environment,
    running,
    targets,
    tree_cpu,
    version,
)

from convert import generate, profile_report

HERE = Path(__file__).resolve().parent
#: Everything this script writes: archives, server logs, wrk's path listings.
WORK = HERE / "work" / "pack"
# serve.py's helpers write their wrk listing and server logs under its WORK:
# point them here, so that this script can run at the same time as serve.py.
serve.WORK = WORK
DWA = Path(sys.executable).parent / "dwa"

ZIP_ACCEPT = "application/zip"
#: Variants that must give the same members (the series is Explicit VR Little Endian).
ZIP_VARIANTS = (
    "application/zip; transfer-syntax=*",
    "application/zip; transfer-syntax=1.2.840.10008.1.2.1",
)
FOLDER, PACKED = "`dwa serve`, folder", "`dwa serve`, study ZIP"


# --- set-up ---------------------------------------------------------------------------


def prepare(source: Path) -> tuple[Path, Path]:
    """A fresh folder archive of ``source`` and a second archive with the study packed."""
    from dicomweb_archive import Converter, ConvertOptions
    from dicomweb_archive.store.archive import open_archive
    from dicomweb_archive.store.catalog import Catalog

    folder, packed = WORK / "folder-archive", WORK / "packed-archive"
    for path in (folder, packed):
        shutil.rmtree(path, ignore_errors=True)
    count = sum(1 for _ in source.iterdir())
    result = Converter(folder, ConvertOptions(workers=os.cpu_count() or 1)).convert([str(source)])
    if not result.ok or result.counts["converted"] != count:
        raise SystemExit(f"conversion failed: {result.to_json()}")
    # As shipped: `dwa pack` into another archive, the folder archive untouched.
    done = subprocess.run(
        [str(DWA), "pack", str(folder), "--all", "-o", str(packed)],
        capture_output=True,
        text=True,
        env=python_environment(),
        check=False,
    )
    zips = list((packed / "studies").glob("*.zip"))
    folders = [p for p in (packed / "studies").iterdir() if p.is_dir()]
    if done.returncode or len(zips) != 1 or folders:
        raise SystemExit(f"dwa pack failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    # Built here once: servers starting together must not both build it.
    for path in (folder, packed):
        with open_archive(path) as archive:
            Catalog(archive).rebuild_index()
    return folder, packed


def servers_for(folder: Path, packed: Path) -> list[Server]:
    env = python_environment()
    found = []
    for name, archive in ((FOLDER, folder), (PACKED, packed)):
        port = free_port()
        command = [str(DWA), "serve", str(archive), "--port", str(port)]
        found.append(Server(name, command, port, env))
    return found


# --- checks of the application/zip download -------------------------------------------


def fetch(server: Server, path: str, accept: str, target: Path) -> tuple[int, str, int]:
    """Status, content type and size of a download streamed into ``target``."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    try:
        conn.request("GET", path, headers={"Accept": accept})
        response = conn.getresponse()
        size = 0
        with open(target, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                size += len(chunk)
        return response.status, response.getheader("content-type") or "", size
    finally:
        conn.close()


@dataclass(frozen=True)
class Source:
    """The source P10 files and what each download must reproduce of them."""

    files: list[Path]
    total: int
    #: SOP Instance UID -> SHA-256 of the pixel data's value.
    pixels: dict[str, str]


def load_source(folder: Path) -> Source:
    import pydicom

    files = sorted(folder.iterdir())
    pixels = {}
    for path in files:
        ds = pydicom.dcmread(path)
        pixels[str(ds.SOPInstanceUID)] = hashlib.sha256(ds.PixelData).hexdigest()
    return Source(files, sum(p.stat().st_size for p in files), pixels)


def members(path: Path) -> dict[str, bytes]:
    """Name -> SHA-256 of every member, after zipfile's CRC check."""
    with zipfile.ZipFile(path) as archive:
        bad = archive.testzip()
        if bad is not None:
            raise SystemExit(f"{path}: member {bad} fails its CRC")
        return {n: hashlib.sha256(archive.read(n)).digest() for n in archive.namelist()}


def check_download(path: Path, source: Source) -> int:
    """The ZIP holds one P10 file per source instance with the source's pixel data."""
    import pydicom

    seen = set()
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) != len(source.files):
            raise SystemExit(f"{path}: {len(infos)} members, not {len(source.files)}")
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED:
                raise SystemExit(f"{path}: {info.filename} is not stored")
            ds = pydicom.dcmread(io.BytesIO(archive.read(info)))
            uid = str(ds.SOPInstanceUID)
            digest = hashlib.sha256(ds.PixelData).hexdigest()
            if source.pixels.get(uid) != digest:
                raise SystemExit(f"{path}: {info.filename} ({uid}): not the source's pixel data")
            seen.add(uid)
    if seen != set(source.pixels):
        raise SystemExit(f"{path}: instances missing or repeated")
    return len(infos)


def check_downloads(servers: list[Server], t: Targets, source: Source) -> int:
    """Every server's download is right, the variants equal it; returns its size."""
    url = f"/dicomweb/studies/{t.study}"
    scratch = WORK / "download.zip"
    expected: dict[str, bytes] | None = None
    sizes = set()
    for server in servers:
        for accept in (ZIP_ACCEPT, *ZIP_VARIANTS):
            status, content_type, size = fetch(server, url, accept, scratch)
            if status != 200 or not content_type.startswith(ZIP_ACCEPT):
                raise SystemExit(f"{server.name}: {url} ({accept}): {status} {content_type}")
            if accept == ZIP_ACCEPT and expected is None:
                check_download(scratch, source)
            found = members(scratch)
            if expected is None:
                expected = found
            elif found != expected:
                raise SystemExit(f"{server.name}: {url} ({accept}): other members")
            sizes.add(size)
    scratch.unlink()
    if len(sizes) != 1:
        raise SystemExit(f"downloads of different sizes: {sorted(sizes)}")
    return sizes.pop()


# --- downloads and baselines ----------------------------------------------------------


def memory(pid: int, key: str) -> int:
    """A ``VmRSS``/``VmHWM`` figure of ``/proc/{pid}/status`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"/proc/{pid}/status: no {key}")


@dataclass(frozen=True)
class Timed:
    """One timing: wall seconds, bytes produced, CPU of the parties, server memory."""

    seconds: float
    size: int
    cpu: float = 0.0
    client_cpu: float = 0.0
    rss_before: int = 0
    rss_peak: int = 0

    @property
    def mb_per_second(self) -> float:
        return self.size / self.seconds / 1e6


def download(curl: str, server: Server, url: str, size: int) -> Timed:
    """``curl`` fetches the study ZIP into /dev/null; the server's peak RSS is reset first."""
    Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    rss = memory(server.pid, "VmRSS")
    server_before, client_before = tree_cpu(server.pid), children_cpu()
    command = [curl, "-sS", "-o", "/dev/null", "-H", f"Accept: {ZIP_ACCEPT}"]
    command += ["-w", "%{http_code} %{size_download}", f"http://127.0.0.1:{server.port}{url}"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.perf_counter() - started
    cpu, client = tree_cpu(server.pid) - server_before, children_cpu() - client_before
    if done.returncode or done.stdout.split() != ["200", str(size)]:
        raise SystemExit(f"{server.name}: {url}: {done.stdout} {done.stderr}")
    return Timed(seconds, size, cpu, client, rss, memory(server.pid, "VmHWM"))


def in_process(work: Callable[[], int]) -> Timed:
    started, cpu = time.perf_counter(), time.process_time()
    size = work()
    return Timed(time.perf_counter() - started, size, time.process_time() - cpu)


def timed_in_process(work: Callable[[], int]) -> Callable[[], Timed]:
    return lambda: in_process(work)


def read_sources(source: Source) -> Callable[[], int]:
    return lambda: sum(len(p.read_bytes()) for p in source.files)


def piped(command: list[str], cwd: Path | None = None) -> Timed:
    """``command``'s output counted by ``wc -c`` through a pipe; wall and CPU time."""
    before = children_cpu()
    started = time.perf_counter()
    with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        counted = subprocess.run(
            ["wc", "-c"], stdin=process.stdout, capture_output=True, text=True, check=True
        )
        process.stdout.close()
    seconds = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"{command[0]} failed ({process.returncode})")
    return Timed(seconds, int(counted.stdout.split()[0]), children_cpu() - before)


def zip_sources(zip_program: str, source: Source) -> Callable[[], Timed]:
    """Info-ZIP's ``zip -0`` of the source files into a pipe."""
    names = [p.name for p in source.files]
    return lambda: piped([zip_program, "-0", "-q", "-", *names], cwd=source.files[0].parent)


def cat_sources(source: Source) -> Callable[[], Timed]:
    """``cat`` of the source files into a pipe (``wc -c`` reads it): bytes through the kernel."""
    return lambda: piped(["cat", *(str(p) for p in source.files)])


def stream_sources(source: Source) -> Callable[[], int]:
    """The project's ``zip_stream`` over the source files' bytes (framing and CRC only)."""
    from dicomweb_archive.export.zipstream import ZipMember, zip_stream

    def run() -> int:
        chosen = (ZipMember.from_bytes(p.name, p.read_bytes()) for p in source.files)
        return sum(len(chunk) for chunk in zip_stream(chosen))

    return run


def regenerate(archive: Path, study: str, zipped: bool) -> Callable[[], int]:
    """What the server does for the download, without HTTP: P10 files, then maybe a ZIP."""
    from dicomweb_archive.export.bundle import Namer, plan_study
    from dicomweb_archive.export.zipstream import ZipMember, zip_stream
    from dicomweb_archive.model import paths
    from dicomweb_archive.server.retrieve import plan
    from dicomweb_archive.store.archive import open_archive

    def run() -> int:
        reader = open_archive(archive)
        try:
            planned = plan(reader, paths.study_metadata(study), "*")
            if not zipped:
                return sum(len(item.p10(reader)) for item in planned)
            names = {e.sop_instance_uid: e.name for e in plan_study(reader, study, None, Namer())}
            chosen = (ZipMember.from_bytes(names[i.sop], i.p10(reader)) for i in planned)
            return sum(len(chunk) for chunk in zip_stream(chosen))
        finally:
            reader.close()

    return run


def profile(work: Callable[[], int], top: int = 30) -> str:
    """cProfile of one in-process run of ``work``: top entries by own and cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    work()
    profiler.disable()
    return profile_report(profiler, top)


# --- measurement ----------------------------------------------------------------------


@dataclass
class Results:
    timings: dict[str, list[Timed]] = field(default_factory=dict)

    def add(self, key: str, timed: Timed) -> None:
        self.timings.setdefault(key, []).append(timed)

    def median(self, key: str, value: Callable[[Timed], float]) -> float:
        return statistics.median(value(t) for t in self.timings[key])


#: In-process and baseline rows: key, label.
BASELINES = (
    ("read", "read the 300 source files (Python `read_bytes`)"),
    ("cat", "`cat` of the source files into a pipe"),
    ("zip-0", "`zip -0` of the source files into a pipe (Info-ZIP)"),
    ("stream", "`zip_stream` of the source files' bytes (in process)"),
    ("p10-folder", "regenerate the P10 files, folder (in process)"),
    ("p10-packed", "regenerate the P10 files, study ZIP (in process)"),
    ("zip-folder", "regenerate + `zip_stream`, folder (in process)"),
    ("zip-packed", "regenerate + `zip_stream`, study ZIP (in process)"),
)


def baselines(
    zip_program: str, source: Source, folder: Path, packed: Path, study: str
) -> dict[str, Callable[[], Timed]]:
    plain = {
        "read": read_sources(source),
        "stream": stream_sources(source),
        "p10-folder": regenerate(folder, study, False),
        "p10-packed": regenerate(packed, study, False),
        "zip-folder": regenerate(folder, study, True),
        "zip-packed": regenerate(packed, study, True),
    }
    found = {key: timed_in_process(work) for key, work in plain.items()}
    found["cat"] = cat_sources(source)
    found["zip-0"] = zip_sources(zip_program, source)
    return {key: found[key] for key, _ in BASELINES}


def src_changes() -> str:
    """The uncommitted changes under src/ the servers started with, kept and fingerprinted."""
    diff = subprocess.run(
        ["git", "-C", str(HERE.parent), "diff", "HEAD", "--", "src"],
        capture_output=True,
        check=False,
    ).stdout
    if not diff:
        return "none"
    (WORK / "src.diff").write_bytes(diff)
    return f"sha256 {hashlib.sha256(diff).hexdigest()[:12]} of `git diff HEAD -- src`"


def alternate(items: list[Server], round_: int) -> list[Server]:
    return items if round_ % 2 == 0 else items[::-1]


def measure(
    load: Load,
    servers: list[Server],
    t: Targets,
    steps: dict[str, Callable[[], Timed]],
    fetch_one: Callable[[Server], Timed],
    args: argparse.Namespace,
) -> Results:
    results = Results()
    frames = Workload([url for url, _ in t.frames], FRAME_HEADERS, len(t.frames[0][1]))
    meta = Workload([t.metadata[0]], JSON_HEADERS, len(t.metadata[1]))
    for server in servers:  # page cache, imports, first connections
        load.run(("warm", server.name), server, frames, FRAME_CONCURRENCY, 2, record=False)
        fetch_one(server)
    for step in steps.values():
        step()
    short = max(args.duration // 2, 1)
    for round_ in range(args.repeat):
        print(f"round {round_ + 1}/{args.repeat}", file=sys.stderr)
        for server in alternate(servers, round_):
            load.run(("frames", server.name), server, frames, FRAME_CONCURRENCY, args.duration)
        for server in alternate(servers, round_):
            load.run(("meta-1", server.name), server, meta, 1, short)
            load.run(("meta-n", server.name), server, meta, args.meta_concurrency, short)
        for server in alternate(servers, round_):
            results.add(f"download {server.name}", fetch_one(server))
        keys = list(steps) if round_ % 2 == 0 else list(steps)[::-1]
        for key in keys:
            results.add(key, steps[key]())
    for server in servers:  # nothing went wrong on the way
        check_frames(server, t.frames[:20])
    return results


# --- report ---------------------------------------------------------------------------


def paired(load: Load, key: str, value: Callable[[serve.Run], float]) -> float:
    """Median over rounds of study ZIP / folder, each round's two runs paired."""
    folder, packed = load.runs[(key, FOLDER)], load.runs[(key, PACKED)]
    return statistics.median(value(z) / value(f) for f, z in zip(folder, packed, strict=True))


def report(load: Load, results: Results, source: Source, zip_size: int, n: int) -> None:
    print(f"Single-frame GETs, {FRAME_CONCURRENCY} in flight, OHIF's Accept:\n")
    print(
        "| Server | Requests/s | p50 ms | p99 ms | MB/s | Server CPU ms/request "
        "| Server cores busy | wrk cores busy |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in (FOLDER, PACKED):
        m = load.median(("frames", name))
        print(
            f"| {name} | {m.per_second:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | "
            f"{m.mb_per_second:,.0f} | {m.cpu_ms:.2f} | {m.server_cores:.2f} | "
            f"{m.client_cores:.2f} |"
        )
    print("\nStudy ZIP / folder (median of the per-round ratios; medians' ratio in brackets):\n")
    print("| Measurement | Requests/s | Server CPU ms/request | p50 latency |")
    print("|---|---:|---:|---:|")
    for key, label in (
        ("frames", "frames"),
        ("meta-1", "series metadata x1"),
        ("meta-n", f"series metadata x{n}"),
    ):
        f, z = load.median((key, FOLDER)), load.median((key, PACKED))
        rate = paired(load, key, lambda r: r.per_second)
        cpu = paired(load, key, lambda r: r.server_cpu / r.requests)
        p50 = paired(load, key, lambda r: r.p50_ms)
        print(
            f"| {label} | {rate:.2f} ({z.per_second / f.per_second:.2f}) | "
            f"{cpu:.2f} ({z.cpu_ms / f.cpu_ms:.2f}) | {p50:.2f} ({z.p50_ms / f.p50_ms:.2f}) |"
        )
    downloads = [results.timings[f"download {name}"] for name in (FOLDER, PACKED)]
    pairs = list(zip(*downloads, strict=True))
    rate = statistics.median(f.seconds / z.seconds for f, z in pairs)
    cpu = statistics.median(z.cpu / f.cpu for f, z in pairs)
    folder_s, packed_s = (statistics.median(t.seconds for t in d) for d in downloads)
    folder_cpu, packed_cpu = (statistics.median(t.cpu for t in d) for d in downloads)
    print(
        f"| `application/zip` download (MB/s; server CPU s) | {rate:.2f} "
        f"({folder_s / packed_s:.2f}) | {cpu:.2f} ({packed_cpu / folder_cpu:.2f}) |  |"
    )
    print(f"\nSeries metadata (gzip passed through), one at a time and {n} in flight:\n")
    print(
        f"| Server | x1 p50 ms | p99 ms | /s | CPU ms/request | x{n} p50 ms | p99 ms | /s "
        "| CPU ms/request |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in (FOLDER, PACKED):
        cells = []
        for key in ("meta-1", "meta-n"):
            m = load.median((key, name))
            cells += [f"{m.p50_ms:.2f}", f"{m.p99_ms:.2f}", f"{m.per_second:,.0f}"]
            cells.append(f"{m.cpu_ms:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")

    read = results.median("read", lambda t: t.mb_per_second)
    zip0 = results.median("zip-0", lambda t: t.mb_per_second)
    print(
        f"\nThe whole study as `application/zip` ({zip_size:,} bytes, {source.total:,} bytes "
        "of source files), MB/s of what each row produces; CPU s is the server's "
        "(downloads) or the work's own:\n"
    )
    print(
        "| Measurement | Seconds | MB/s | vs read | vs `zip -0` | CPU s | MB per CPU s "
        "| curl CPU s | Server RSS before MiB | peak MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [(key, label) for key, label in BASELINES]
    rows += [(f"download {name}", f"download, {name}") for name in (FOLDER, PACKED)]
    for key, label in rows:
        timed = results.timings[key]
        mb = results.median(key, lambda t: t.mb_per_second)
        cells = [
            f"{results.median(key, lambda t: t.seconds):.2f}",
            f"{mb:,.0f}",
            f"{mb / read:.2f}",
            f"{mb / zip0:.2f}",
            f"{results.median(key, lambda t: t.cpu):.2f}",
            f"{results.median(key, lambda t: t.size / max(t.cpu, 1e-3) / 1e6):,.0f}",
        ]
        if key.startswith("download"):
            cells += [
                f"{results.median(key, lambda t: t.client_cpu):.2f}",
                f"{statistics.median(t.rss_before for t in timed) / 2**20:.0f}",
                f"{max(t.rss_peak for t in timed) / 2**20:.0f}",
            ]
        else:
            cells += ["", "", ""]
        print(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = load_arguments(__doc__)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one in-process ZIP of the folder study"
    )
    args = parse_load_arguments(parser)

    wrk = ensure_program("wrk", "wrk")
    curl = ensure_program("curl", "curl")
    zip_program = ensure_program("zip", "zip")
    (WORK / "serve-wrk").mkdir(parents=True, exist_ok=True)
    lua = WORK / "serve-wrk" / "cycle.lua"
    lua.write_text(serve.LUA)
    load = Load(wrk, lua, args.limit)

    source_folder = generate(args.slices, args.rows, args.columns)
    source = load_source(source_folder)
    folder, packed = prepare(source_folder)
    t = targets(folder)
    zip_path = next((packed / "studies").glob("*.zip"))
    servers = servers_for(folder, packed)
    url = f"/dicomweb/studies/{t.study}"
    load_before = os.getloadavg()
    state, changes = git_state(), src_changes()
    with running(servers):
        for server in servers:
            check_frames(server, t.frames)
            check_metadata(server, *t.metadata)
        zip_size = check_downloads(servers, t, source)
        steps = baselines(zip_program, source, folder, packed, t.study)
        results = measure(load, servers, t, steps, lambda s: download(curl, s, url, zip_size), args)
    load_after = os.getloadavg()

    short = max(args.duration // 2, 1)
    print(
        f"\n{args.slices} instances of {args.rows}x{args.columns} (frame body "
        f"{len(t.frames[0][1]):,} bytes, series metadata.gz {len(t.metadata[1]):,} bytes, "
        f"study ZIP {zip_path.stat().st_size:,} bytes); {datetime.date.today()}, "
        f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
        f"{version([wrk, '-v']).split(' [')[0]}, {version([curl, '--version'])[:12]}, "
        f"uvicorn {importlib.metadata.version('uvicorn')}, "
        f"starlette {importlib.metadata.version('starlette')}; {state} "
        f"(uncommitted: {changes}); "
        f"median of {args.repeat} interleaved rounds; frame runs {args.duration} s, "
        f"metadata runs {short} s; client and servers on this machine; load average "
        f"(1, 5 min) {load_before[0]:.1f}, {load_before[1]:.1f} before, "
        f"{load_after[0]:.1f}, {load_after[1]:.1f} after.\n"
    )
    report(load, results, source, zip_size, args.meta_concurrency)
    if args.profile:
        text = profile(regenerate(folder, t.study, True))
        print("\n```\n" + text.strip() + "\n```")


if __name__ == "__main__":
    main()
