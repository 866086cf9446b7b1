"""``http.response.pathsend`` answered by ``sendfile`` on the connection ``dwa serve`` runs."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dicomweb_archive.server import sendfile
from dicomweb_archive.server.connection import BoundedHttpToolsProtocol
from dicomweb_archive.server.pathsend import PATHSEND, SENT_ON_RETURN
from tests.server.live import live_server

#: Far more than a loopback socket takes at once: the send waits for room.
SIZE = 48 * 1024 * 1024


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sendfile") / "body"
    path.write_bytes(bytes(range(256)) * (SIZE // 256))
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sendfile") / "small"
    path.write_bytes(bytes(range(256)) * 1024)
    return path


@pytest.fixture(scope="module")
def served(stored: Path, small: Path) -> Iterator[str]:
    """A server whose application sends ``stored`` by path (or says the extension is missing)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        offer = scope.get("extensions", {}).get(PATHSEND)
        sent = small if scope["path"] == "/small" else stored
        length = sent.stat().st_size + (1 if scope["path"] == "/longer" else 0)
        headers = [(b"content-length", str(length if offer is not None else 0).encode())]
        status = 200 if offer is not None else 501
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if offer is None:
            await send({"type": "http.response.body", "body": b""})
        elif scope["path"] == "/descriptor":
            # This process's descriptor: sent before send returns, then closed.
            assert offer[SENT_ON_RETURN]
            fd = os.open(stored, os.O_RDONLY)
            try:
                await send({"type": PATHSEND, "path": f"/proc/self/fd/{fd}"})
            finally:
                os.close(fd)
        else:
            await send({"type": PATHSEND, "path": str(sent)})

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


def test_a_descriptor_of_the_application_is_sent_before_send_returns(
    served: str, stored: Path
) -> None:
    with httpx.Client(timeout=30) as client:
        for _ in range(2):
            assert client.get(f"{served}/descriptor").content == stored.read_bytes()


def test_pipelined_answers_each_come_whole_and_in_order(
    served: str, small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A head the socket takes in part goes first all the same: no byte overtakes another."""
    real = sendfile._send_head

    def in_part(fd: int, kind: tuple[int, int, int], head: bytes) -> bytes:
        return real(fd, kind, head[:7]) + head[7:]  # as when the socket is full

    monkeypatch.setattr(sendfile, "_send_head", in_part)
    host, port = served.removeprefix("http://").split(":")
    expected, count = small.read_bytes(), 24
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n" * count)
        time.sleep(0.3)  # the server fills the socket, then waits for room
        received = bytearray()
        sock.settimeout(30)
        while received.count(b"HTTP/1.1 200 OK\r\n") < count or not received.endswith(expected):
            chunk = sock.recv(4096)
            assert chunk, "the connection closed"
            received += chunk
    answers = bytes(received).split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert len(answers) == count
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert f"content-length: {len(expected)}".encode() in head
        assert body == expected


def test_a_full_socket_takes_none_of_the_head() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                ours.send(b"x" * 65536)
        kind = (ours.family, ours.type, ours.proto)
        head = b"HTTP/1.1 200 OK\r\n\r\n"
        assert sendfile._send_head(ours.fileno(), kind, head) == head
        theirs.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while theirs.recv(1 << 20):
                pass
        assert sendfile._send_head(ours.fileno(), kind, b"head") == b""
