"""The live servers tests run: ports no other process can take from under them."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from dicomweb_archive import Converter, ConvertOptions
from tests import ports
from tests.server import live


def test_a_live_server_listens_before_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its port is bound before uvicorn runs: no window for another process to take it."""
    real = uvicorn.Server.run
    free_when_run: list[bool] = []

    def run(server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", server.config.port))
                free_when_run.append(True)
            except OSError:
                free_when_run.append(False)
        real(server, sockets)

    monkeypatch.setattr(uvicorn.Server, "run", run)
    with live.live_server(Starlette(), base_path="") as url:
        assert httpx.get(url).status_code == 404
    assert free_when_run == [False]


def test_dwa_serve_listens_on_the_port_it_took_and_says(tmp_path: Path) -> None:
    """No probed port given to it: it binds a free one itself, then says which."""
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([]).ok
    with live.dwa_serve(root) as (url, pid):
        port = httpx.URL(url).port
        assert port is not None and ports.listens(pid, port)
        assert httpx.get(f"{url}/studies").status_code in (200, 204)
