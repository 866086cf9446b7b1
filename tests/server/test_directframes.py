"""The usual frame request answered by ``dwa serve``'s connection: the connection's rules kept.

``tests/server/test_fastpath.py`` compares every answer with the application's;
here the connection itself: pipelined requests answered whole and in order
around a frame the socket cannot take at once, a slow reader that never makes
the server hold a frame in memory, clients leaving mid-body, ``Connection:
close`` and HTTP/1.0, and the head deadline after an answered frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from dicomweb_archive.model import multipart, paths
from dicomweb_archive.server import connection, directframes
from dicomweb_archive.server.app import create_app
from dicomweb_archive.server.connection import BoundedHttpToolsProtocol
from dicomweb_archive.server.directframes import DirectFramesProtocol
from dicomweb_archive.server.fastpath import UsualFrames
from tests.server.conftest import converted, dataset
from tests.server.live import dwa_serve, live_server, memory_kib

OHIF = b"multipart/related; type=application/octet-stream; transfer-syntax=*"
#: Far more than a loopback socket takes at once: the answer waits for room.
SIZE = 48 * 1024 * 1024


def _frame_url(name: str) -> str:
    ds = dataset(name)
    return "/dicomweb/" + paths.frame_path(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, 1
    )


BIG, SMALL = _frame_url("CT_small.dcm"), _frame_url("MR_small.dcm")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two instances; the CT's frame made :data:`SIZE` bytes (its part header kept)."""
    root = converted(tmp_path_factory, "folders", ["CT_small.dcm", "MR_small.dcm"])
    frame = root / BIG.removeprefix("/dicomweb/")
    stored = frame.read_bytes()
    header = stored[: stored.index(b"\r\n\r\n") + 4]
    frame.write_bytes(header + bytes(range(256)) * (SIZE // 256) + multipart.TRAILER)
    return root


@pytest.fixture(scope="module")
def servers(archive: Path) -> Iterator[tuple[int, int]]:
    """The ports of the same archive served without the fast path and by ``dwa serve``'s
    connection; every frame asked once, so the connection knows its head."""
    normal, direct = create_app(archive), create_app(archive)
    stack = normal.build_middleware_stack()
    assert isinstance(stack, UsualFrames)
    stack.enabled = False
    normal.middleware_stack = stack
    options: dict[str, Any] = {"base_path": "", "access_log": False}
    with (
        live_server(normal, http=BoundedHttpToolsProtocol, **options) as normal_url,
        live_server(direct, http=DirectFramesProtocol, **options) as direct_url,
    ):
        ports = int(normal_url.rpartition(":")[2]), int(direct_url.rpartition(":")[2])
        for port in ports:
            for url in (BIG, SMALL):
                _get(port, url)
        yield ports


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the direct answers the socket did not take at once."""
    counted: list[int] = []
    real = directframes.finish_file

    async def counting(*args: Any) -> None:
        counted.append(1)
        await real(*args)

    monkeypatch.setattr(directframes, "finish_file", counting)
    return counted


def _request(
    path: str, method: bytes = b"GET", extra: bytes = b"", version: bytes = b"1.1"
) -> bytes:
    return b"%s %s HTTP/%s\r\nHost: 127.0.0.1\r\nAccept: %s\r\n%s\r\n" % (
        method,
        path.encode(),
        version,
        OHIF,
        extra,
    )


def _get(port: int, path: str) -> None:
    response = httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Accept": OHIF.decode()})
    assert response.status_code == 200


def _connect(port: int, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket()
    if receive_buffer is not None:  # before connecting: the window follows it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(30)
    return sock


def _answers(sock: socket.socket, heads: list[bool]) -> list[tuple[bytes, bytes]]:
    """One answer per request (``True``: a HEAD, no body): each head without its
    ``Date`` line, and its body."""
    reader = sock.makefile("rb")
    answers = []
    for is_head in heads:
        lines = []
        while (line := reader.readline()) not in (b"\r\n", b""):
            lines.append(line)
        assert lines, "the connection closed"
        length = next(int(x.split(b":")[1]) for x in lines if x.startswith(b"content-length:"))
        body = reader.read(0 if is_head else length)
        assert len(body) == (0 if is_head else length)
        answers.append((b"".join(x for x in lines if not x.startswith(b"date:")), body))
    return answers


def _closed(sock: socket.socket) -> bool:
    with contextlib.suppress(ConnectionResetError):
        return sock.recv(1) == b""
    return True


def test_pipelined_answers_come_whole_and_in_order(
    servers: tuple[int, int], waits: list[int]
) -> None:
    # Small frames the socket takes at once, a frame it cannot, and other
    # requests queued behind it, all in one write.
    asked = [
        (_request(SMALL), False),
        (_request(SMALL), False),
        (_request(BIG), False),
        (_request(SMALL), False),
        (_request(SMALL, b"HEAD"), True),
        (_request(BIG, extra=b"Range: bytes=0-99\r\n"), False),
        (_request(BIG), False),
        (_request("/dicomweb/studies/9.9.9/metadata"), False),  # a 404
        (_request(SMALL), False),
    ]
    results = []
    for port in servers:
        with _connect(port, receive_buffer=16 * 1024) as sock:
            sock.sendall(b"".join(request for request, _ in asked))
            time.sleep(0.3)  # the server fills the socket, then waits for room
            results.append(_answers(sock, [is_head for _, is_head in asked]))
            # The connection is kept: the frame is answered at once again.
            sock.sendall(_request(SMALL))
            results[-1] += _answers(sock, [False])
    normal, direct = results
    assert [head for head, _ in direct] == [head for head, _ in normal]
    assert [body for _, body in direct] == [body for _, body in normal]
    assert len(direct[2][1]) > SIZE
    assert waits == [1]  # the big frame waited for room, answered by the connection


def test_a_request_behind_an_answered_frame_has_no_keep_alive_deadline(archive: Path) -> None:
    """The frame answered at once sets the idle connection's deadline; the next
    request, in the same data and slow to send, must not be cut by it."""
    options: dict[str, Any] = {"base_path": "", "access_log": False, "timeout_keep_alive": 0.3}
    with live_server(create_app(archive), http=DirectFramesProtocol, **options) as url:
        port = int(url.rpartition(":")[2])
        _get(port, SMALL)  # learned
        with _connect(port, receive_buffer=16 * 1024) as sock:
            sock.sendall(_request(SMALL) + _request(BIG, extra=b"Range: bytes=0-9999999\r\n"))
            time.sleep(1)  # nothing read: the range waits for room
            (_, small), (head, body) = _answers(sock, [False, False])
        assert head.startswith(b"HTTP/1.1 206 ")
        assert len(body) == 10_000_000


def test_a_slow_reader_is_never_sent_from_memory(archive: Path) -> None:
    with dwa_serve(archive) as (root, pid):
        port = int(root.split(":")[2].partition("/")[0])
        _get(port, BIG)  # learned
        before = memory_kib(pid)
        with _connect(port, receive_buffer=16 * 1024) as sock:
            sock.sendall(_request(BIG) * 3)
            time.sleep(0.5)  # nothing read: the server holds what it could not send
            held_kib = memory_kib(pid) - before
            answers = _answers(sock, [False] * 3)
        assert held_kib < SIZE // 1024 // 4, f"the server grew by {held_kib} KiB"
        assert all(len(body) > SIZE for _, body in answers)


def test_a_client_leaving_mid_body_harms_no_one(servers: tuple[int, int], waits: list[int]) -> None:
    port = servers[1]
    for _ in range(3):
        with _connect(port, receive_buffer=16 * 1024) as sock:
            sock.sendall(_request(BIG) + _request(SMALL))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            time.sleep(0.2)  # the server waits for room
            # Gone with a reset, the server still sending.
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
    deadline = time.monotonic() + 10
    while len(waits) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)  # the rest of each is sent (or not) after the head
    assert len(waits) == 3
    with _connect(port) as sock:
        sock.sendall(_request(BIG))
        ((head, body),) = _answers(sock, [False])
    assert head.startswith(b"HTTP/1.1 200 ") and len(body) > SIZE


@pytest.mark.parametrize(
    "request_bytes",
    [
        _request(SMALL, extra=b"Connection: close\r\n"),
        _request(SMALL, version=b"1.0"),
    ],
)
def test_an_answer_without_keep_alive_closes_the_connection(
    servers: tuple[int, int], request_bytes: bytes
) -> None:
    results = []
    for port in servers:
        with _connect(port) as sock:
            sock.sendall(request_bytes + _request(SMALL))  # the second is not answered
            results.append(_answers(sock, [False]))
            assert _closed(sock)
    normal, direct = results
    assert direct == normal
    assert b"connection: close" in direct[0][0]


def test_the_head_deadline_holds_after_an_answered_frame(
    servers: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "HEAD_TIMEOUT", 0.5)
    with _connect(servers[1]) as sock:
        sock.sendall(_request(SMALL))
        _answers(sock, [False])
        sock.sendall(b"GET /dicomweb/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        assert received.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 3


def test_the_uvicorn_internals_relied_on_are_there(archive: Path) -> None:
    """The connection reads more of uvicorn's protocol than the bounded one
    (``tests/server/test_connection.py``): a uvicorn without these fails here,
    by name, instead of answering frames differently."""
    for name in ("on_response_complete", "_unset_keepalive_if_required"):
        assert callable(getattr(HttpToolsProtocol, name, None)), name
    assert STATUS_LINE[200] == b"HTTP/1.1 200 OK\r\n"
    app = create_app(archive)
    config = uvicorn.Config(app, http=DirectFramesProtocol, lifespan="off")
    config.load()
    assert isinstance(config.loaded_app, ProxyHeadersMiddleware)
    assert config.loaded_app.app is app

    async def connect() -> None:
        protocol = DirectFramesProtocol(config, ServerState(), {}, _loop=asyncio.get_running_loop())
        for name in ("pipeline", "limit_concurrency", "connections", "tasks", "root_path"):
            assert hasattr(protocol, name), name
        for name in ("access_log", "access_logger", "client", "timeout_keep_alive_task"):
            assert hasattr(protocol, name), name
        assert isinstance(protocol.server_state.default_headers, list)

    asyncio.run(connect())
