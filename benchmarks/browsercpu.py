"""Where a browser page load's CPU goes, for ``viewer.py``: Chromium's threads by kind
(its processes under the Playwright driver, ``/proc``), the rest of this script's
children (the servers), and how busy the whole machine was."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from serve import TICKS, _children, tree_cpu

#: Where Chromium's CPU goes: Cornerstone decodes in dedicated workers (threads
#: of the renderer named so), OHIF and Cornerstone's rendering run on the
#: renderer's main thread; the GPU process is SwiftShader's WebGL, the network
#: service moves (and throttles) the bytes; "other" is the rest (compositor
#: and raster threads, the browser process).
CPU_KINDS = ("workers", "main", "gpu", "network", "other", "servers")


def cpu() -> dict[str, float]:
    """CPU seconds so far of the browser's threads by kind (``CPU_KINDS``), and of the
    rest of this script's children ("servers": the servers and their fronts)."""
    found = dict.fromkeys(CPU_KINDS, 0.0)
    for child in _children(os.getpid()):
        with contextlib.suppress(OSError):
            if not Path(f"/proc/{child}/comm").read_text().startswith("node"):
                found["servers"] += tree_cpu(child)
                continue
            pending = [child]  # the Playwright driver, Chromium under it
            while pending:
                pid = pending.pop()
                pending += _children(pid)
                with contextlib.suppress(OSError):
                    for kind, seconds in _threads(pid):
                        found[kind] += seconds
    return found


def _threads(pid: int) -> Iterator[tuple[str, float]]:
    """Each thread of Chromium's process ``pid``: its kind and CPU seconds."""
    command = Path(f"/proc/{pid}/cmdline").read_bytes()
    process = "other"
    if b"--type=renderer" in command:
        process = "renderer"
    elif b"--type=gpu-process" in command:
        process = "gpu"
    elif b"network.mojom.NetworkService" in command:
        process = "network"
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rpartition(")")[2].split()
            seconds = (int(fields[11]) + int(fields[12])) / TICKS
            if process != "renderer":
                yield process, seconds
            elif task.name == str(pid):
                yield "main", seconds
            elif (task / "comm").read_text().startswith("DedicatedWorker"):
                yield "workers", seconds
            else:
                yield "other", seconds


def machine_times() -> tuple[int, int]:
    """All cores' (busy, total) jiffies so far (``/proc/stat``)."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def busy_since(before: tuple[int, int]) -> float:
    """The share of all cores' time that was busy since ``machine_times()`` said ``before``."""
    after = machine_times()
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0
