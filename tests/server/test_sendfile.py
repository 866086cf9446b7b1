"""``http.response.pathsend`` answered by ``sendfile`` on the connection ``dwa serve`` runs."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dicomweb_archive.server.connection import BoundedHttpToolsProtocol
from dicomweb_archive.server.pathsend import PATHSEND
from tests.server.live import live_server

#: Far more than a loopback socket takes at once: the send waits for room.
SIZE = 48 * 1024 * 1024


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sendfile") / "body"
    path.write_bytes(bytes(range(256)) * (SIZE // 256))
    return path


@pytest.fixture(scope="module")
def served(stored: Path) -> Iterator[str]:
    """A server whose application sends ``stored`` by path (or says the extension is missing)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        offered = PATHSEND in scope.get("extensions", {})
        length = SIZE + (1 if scope["path"] == "/longer" else 0)
        headers = [(b"content-length", str(length if offered else 0).encode())]
        await send(
            {"type": "http.response.start", "status": 200 if offered else 501, "headers": headers}
        )
        if offered:
            await send({"type": PATHSEND, "path": str(stored)})
        else:
            await send({"type": "http.response.body", "body": b""})

    with live_server(app, base_path="", http=BoundedHttpToolsProtocol, lifespan="off") as url:  # type: ignore[arg-type]
        yield url


def test_a_file_is_sent_whole_on_a_kept_alive_connection(served: str, stored: Path) -> None:
    with httpx.Client(timeout=30) as client:
        for _ in range(3):
            response = client.get(f"{served}/file")
            assert response.status_code == 200
            assert response.content == stored.read_bytes()
        head = client.head(f"{served}/file")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(SIZE)
        assert head.content == b""
        assert client.get(f"{served}/file").content == stored.read_bytes()


def test_a_client_leaving_mid_body_harms_no_one(served: str, stored: Path) -> None:
    host, port = served.removeprefix("http://").split(":")
    for _ in range(3):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    assert httpx.get(f"{served}/file", timeout=30).content == stored.read_bytes()


def test_a_file_of_another_length_than_announced_ends_the_connection(served: str) -> None:
    with contextlib.suppress(httpx.RemoteProtocolError), httpx.Client(timeout=30) as client:
        response = client.get(f"{served}/longer")
        assert len(response.content) < SIZE + 1
    assert httpx.get(f"{served}/file", timeout=30).status_code == 200
