"""Frames from ``dwa serve`` of this tree against another checkout's, alternated, beside nginx.

    .venv/bin/python benchmarks/serve_against.py TREE [--repeat 5] [--duration 5]
                                                  [--workers 1 2] [--no-access-log]

What ``benchmarks/serve.py`` measures for frames (the same archive, ``wrk``
with 25 connections cycling over every frame with OHIF's ``Accept``), for the
servers a change is judged by: nginx with ``deploy/nginx.conf`` and, with as
many worker processes, ``dwa serve`` of ``TREE`` (its ``src`` first on
``PYTHONPATH``) and of this tree.  Each round runs every server once, in an
order rotated round by round, so the trees meet the same moments of a shared
machine; the report gives medians over the rounds of frames/s, of each
round's ratio to nginx with as many workers, and of CPU per frame (user and
system, from ``/proc``) of the server and of ``wrk``, with the load average
before and after.  Every frame is checked before the load and some after it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from serve import (
    DWA,
    FRAME_CONCURRENCY,
    FRAME_HEADERS,
    LUA,
    WORK,
    Load,
    Server,
    Workload,
    check_frames,
    children_cpu,
    convert_archive,
    ensure_program,
    free_port,
    git_state,
    nginx_server,
    python_environment,
    running,
    targets,
    tree_times,
)


@dataclass(frozen=True)
class Sample:
    """One frame run of one server."""

    per_second: float
    ratio: float
    user_ms: float
    system_ms: float
    client_ms: float


def dwa_server(name: str, tree: Path, archive: Path, workers: int, log: bool) -> Server:
    """``dwa serve`` running ``tree``'s sources."""
    env = python_environment()
    env["PYTHONPATH"] = str(tree / "src")
    port = free_port()
    command = [str(DWA), "serve", str(archive), "--port", str(port), "--workers", str(workers)]
    if not log:
        command.append("--no-access-log")
    label = f"`dwa serve{f' --workers {workers}' if workers > 1 else ''}`, {name}"
    return Server(label, command, port, env, workers=workers)


def frame_run(load: Load, server: Server, work: Workload, seconds: int) -> tuple[float, ...]:
    """Frames/s, then user and system CPU ms per frame of the server and wrk's."""
    user, system = tree_times(server.pid)
    client = children_cpu()
    run = load.run(("frames", server.name), server, work, FRAME_CONCURRENCY, seconds)
    user_after, system_after = tree_times(server.pid)
    per = 1e3 / run.requests
    return (
        run.per_second,
        (user_after - user) * per,
        (system_after - system) * per,
        (children_cpu() - client) * per,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tree", type=Path, help="the other checkout")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5, help="seconds of each run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--slices", type=int, default=300)
    args = parser.parse_args()
    tree = args.tree.resolve()
    here = Path(__file__).resolve().parent.parent
    wrk, nginx = ensure_program("wrk", "wrk"), ensure_program("nginx", "nginx-core")
    (WORK / "serve-wrk").mkdir(parents=True, exist_ok=True)
    lua = WORK / "serve-wrk" / "cycle.lua"
    lua.write_text(LUA)
    load = Load(wrk, lua, 2_000_000)
    archive = convert_archive(args.slices, 512, 512)
    t = targets(archive)
    work = Workload([url for url, _ in t.frames], FRAME_HEADERS, len(t.frames[0][1]))
    groups: list[list[Server]] = []
    for workers in args.workers:
        groups.append(
            [
                nginx_server(nginx, archive, workers),
                dwa_server(str(args.tree), tree, archive, workers, not args.no_access_log),
                dwa_server("this tree", here, archive, workers, not args.no_access_log),
            ]
        )
    servers = [s for group in groups for s in group]
    samples: dict[str, list[Sample]] = {s.name: [] for s in servers}
    load_before = os.getloadavg()
    with running(servers):
        for server in servers:
            check_frames(server, t.frames)
            load.run(("warm", server.name), server, work, FRAME_CONCURRENCY, 2, record=False)
        for round_ in range(args.repeat):
            print(f"round {round_ + 1}/{args.repeat}", file=sys.stderr)
            for group in groups:
                shift = round_ % len(group)
                order = group[shift:] + group[:shift]
                measured = {s.name: frame_run(load, s, work, args.duration) for s in order}
                baseline = measured[group[0].name][0]
                for name, (rate, user, system, client) in measured.items():
                    samples[name].append(Sample(rate, rate / baseline, user, system, client))
        for server in servers:
            check_frames(server, t.frames[:20])
    load_after = os.getloadavg()
    other = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"\n{git_state()}; against {args.tree} ({other}); "
        f"access log {'off' if args.no_access_log else 'on'}; medians of {args.repeat} rounds "
        f"of {args.duration} s; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after.\n"
    )
    print(
        "| Server | Frames/s | vs nginx, same workers (each round) | Server CPU ms/frame "
        "| of it user | of it system | wrk CPU ms/frame |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for server in servers:
        got = samples[server.name]
        ratios = ", ".join(f"{s.ratio:.2f}" for s in got)
        median = statistics.median
        print(
            f"| {server.name} "
            f"| {median(s.per_second for s in got):,.0f} "
            f"| {median(s.ratio for s in got):.2f} ({ratios}) "
            f"| {median(s.user_ms + s.system_ms for s in got):.3f} "
            f"| {median(s.user_ms for s in got):.3f} | {median(s.system_ms for s in got):.3f} "
            f"| {median(s.client_ms for s in got):.3f} |"
        )


if __name__ == "__main__":
    main()
