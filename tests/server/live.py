"""A real uvicorn server on a free loopback port, for real HTTP clients."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import uvicorn
from starlette.applications import Starlette

#: How long a started server may take to answer.  Only a server that never
#: comes up waits this long; one that exits fails at once, with what it said.
START_DEADLINE = 120.0
#: Ports tried by a server started in another process; what it says of a taken one.
_PORT_ATTEMPTS = 3
_IN_USE = "address already in use"


@contextlib.contextmanager
def live_server(app: Starlette, base_path: str = "/dicomweb", **options: Any) -> Iterator[str]:
    """Serve ``app`` in a thread (``options`` for uvicorn); yields the service root URL.

    The listening socket is bound here and handed to uvicorn: no other process
    can take its port between a probe and the server's own bind.
    """
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_DEADLINE
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert server.started, "uvicorn " + ("did not start" if thread.is_alive() else "exited")
        yield f"http://127.0.0.1:{port}{base_path}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listening.close()


@contextlib.contextmanager
def dwa_serve(archive: Path | str) -> Iterator[tuple[str, int]]:
    """A real ``dwa serve`` process on a free port; yields its service root URL and pid."""
    command = [sys.executable, "-m", "dicomweb_archive.cli", "serve", str(archive)]
    with tempfile.TemporaryFile() as stderr:
        for attempt in range(_PORT_ATTEMPTS):
            # Another process may take the probed port before the server binds it.
            port = free_port()
            stderr.seek(0)
            stderr.truncate()
            server = subprocess.Popen(
                [*command, "--port", str(port), "--no-access-log"], stderr=stderr
            )
            root = f"http://127.0.0.1:{port}/dicomweb"
            try:
                wait_until_serving(f"{root}/studies", server, stderr)
                break
            except AssertionError:
                server.wait(timeout=30)
                if attempt + 1 == _PORT_ATTEMPTS or _IN_USE not in _said(stderr):
                    raise
        try:
            yield root, server.pid
        finally:
            server.terminate()
            server.wait(timeout=30)


def free_port() -> int:
    """A loopback port nothing listens on now (another process may take it after)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_serving(
    url: str, server: subprocess.Popen[bytes], stderr: IO[bytes], **headers: str
) -> httpx.Response:
    """The first answer of ``server`` at ``url``, once it listens (its ``stderr`` on failure)."""
    deadline = time.monotonic() + START_DEADLINE
    while True:
        try:
            return httpx.get(url, headers=headers)
        except httpx.TransportError:
            said = _said(stderr)
            assert server.poll() is None, f"the server exited ({server.returncode}): {said}"
            assert time.monotonic() < deadline, f"the server did not answer: {said}"
            time.sleep(0.1)


def _said(stderr: IO[bytes]) -> str:
    stderr.seek(0)
    return stderr.read().decode(errors="replace")[-4000:]


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's memory figure from ``/proc/{pid}/status`` (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")
