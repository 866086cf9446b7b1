"""A real uvicorn server on a free loopback port, for real HTTP clients."""

from __future__ import annotations

import contextlib
import functools
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

from tests import ports

#: How long a started server may take to answer (one that exits fails at once).
START_DEADLINE = ports.START_DEADLINE


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
def dwa_serve(
    archive: Path | str,
    *options: str,
    access_log: bool = False,
    log: IO[bytes] | None = None,
    **popen: Any,
) -> Iterator[tuple[str, int]]:
    """A real ``dwa serve ARCHIVE OPTIONS`` process; yields its service root URL and pid.

    It takes a free port itself (``--port 0``) and says which: no other process
    can take the port between a probe and its bind.  What it says goes to
    ``log`` (standard error; a temporary file if none); ``popen`` goes to
    :class:`subprocess.Popen`.
    """
    command = [sys.executable, "-m", "dicomweb_archive.cli", "serve", str(archive), "--port", "0"]
    command += [*options] if access_log else ["--no-access-log", *options]
    with contextlib.ExitStack() as stack:
        stderr = log or stack.enter_context(tempfile.TemporaryFile())
        server = subprocess.Popen(command, stderr=stderr, **popen)
        try:
            said = functools.partial(ports.written, stderr)
            root = ports.announced(r"^serving .* at (http://\S+)$", server, said)[1]
            wait_until_serving(f"{root}/studies", server, stderr)
            yield root, server.pid
        finally:
            server.terminate()
            server.wait(timeout=30)


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
    return ports.written(stderr)[-4000:]


def memory_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's memory figure from ``/proc/{pid}/status`` (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")
