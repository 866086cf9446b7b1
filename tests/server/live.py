"""A real uvicorn server on a free loopback port, for real HTTP clients."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

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
