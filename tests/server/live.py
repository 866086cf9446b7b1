"""A real uvicorn server on a free loopback port, for real HTTP clients."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette


@contextlib.contextmanager
def live_server(app: Starlette, base_path: str = "/dicomweb", **options: Any) -> Iterator[str]:
    """Serve ``app`` in a thread (``options`` for uvicorn); yields the service root URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}{base_path}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def dwa_serve(archive: Path) -> Iterator[tuple[str, int]]:
    """A real ``dwa serve`` process on a free port; yields its service root URL and pid."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "dicomweb_archive.cli", "serve", str(archive)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--no-access-log"], stderr=subprocess.DEVNULL
    )
    try:
        root = f"http://127.0.0.1:{port}/dicomweb"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{root}/studies").raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        yield root, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's memory figure from ``/proc/{pid}/status`` (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")
