"""The connection's bounds, with real sockets against a live ``dwa serve``."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
import uvicorn
from pydicom.data import get_testdata_file
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.server import connection
from dicomweb_archive.server.app import create_app
from dicomweb_archive.server.connection import HEAD_TIMEOUT, BoundedHttpToolsProtocol
from dicomweb_archive.server.directframes import DirectFramesProtocol
from tests.conftest import errors_logged
from tests.server.live import dwa_serve, live_server

HEAD = b"GET /dicomweb/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("connection") / "archive"
    assert (
        Converter(root, ConvertOptions(workers=1)).convert([get_testdata_file("CT_small.dcm")]).ok
    )
    return root


@pytest.fixture(scope="module")
def served(archive: Path) -> Iterator[tuple[str, int]]:
    """``dwa serve`` in its own process, as users run it."""
    with dwa_serve(archive) as (root, _):
        yield "127.0.0.1", int(root.rpartition(":")[2].partition("/")[0])


def _answer(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """What the server sends until it closes the connection, and when it closed it."""
    started = time.monotonic()
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received, time.monotonic() - started


def _response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length, the connection left open."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(head.lower().partition(b"content-length: ")[2].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _served_quickly(address: tuple[str, int]) -> None:
    started = time.monotonic()
    response = httpx.get(f"http://{address[0]}:{address[1]}/dicomweb/studies", timeout=5)
    assert response.status_code == 200
    assert time.monotonic() - started < 1


def test_a_huge_head_is_refused_at_once(served: tuple[str, int]) -> None:
    for name in (b"Accept", b"X-Filler"):
        with socket.create_connection(served) as sock:
            started = time.monotonic()
            # Refused before the client finished sending: the pipe may break.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(HEAD + name + b": " + b"a" * 2**20 + b"\r\n\r\n")
            answer, _ = _answer(sock, timeout=5)
            assert time.monotonic() - started < 2
            # The answer may be lost to a reset when the client is still sending.
            assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
        _served_quickly(served)
    # The next request on a kept-alive connection is bounded as much as the first.
    with socket.create_connection(served) as sock:
        sock.sendall(HEAD + b"\r\n")
        assert _response(sock).startswith(b"HTTP/1.1 200 ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(HEAD + b"X-Filler: " + b"a" * 200_000 + b"\r\n\r\n")
        answer, _ = _answer(sock, timeout=5)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    # A large head within the limit is served.
    response = httpx.get(
        f"http://{served[0]}:{served[1]}/dicomweb/studies",
        headers={"X-Filler": "a" * 32_000},
    )
    assert response.status_code == 200


def test_idle_and_slow_clients_are_closed(served: tuple[str, int]) -> None:
    idle = socket.create_connection(served)
    half = socket.create_connection(served)
    half.sendall(HEAD)
    dripping = socket.create_connection(served)
    stop = threading.Event()

    def drip() -> None:
        # One byte a second: data that keeps arriving does not extend the deadline.
        for byte in b"X-Slow: " + b"a" * 100:
            if stop.wait(1):
                return
            try:
                dripping.send(bytes([byte]))
            except OSError:
                return

    dripping.sendall(HEAD)
    thread = threading.Thread(target=drip)
    thread.start()
    try:
        _served_quickly(served)  # others are served meanwhile
        for sock in (idle, half, dripping):
            answer, waited = _answer(sock, timeout=HEAD_TIMEOUT + 5)
            assert answer.startswith(b"HTTP/1.1 408 "), answer
            assert b'"status":408' in answer
            assert waited < HEAD_TIMEOUT + 3
        _served_quickly(served)
    finally:
        stop.set()
        thread.join()
        for sock in (idle, half, dripping):
            sock.close()


def test_a_head_begun_later_has_its_own_deadline(
    archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head's timer, set by an earlier request, finds a later head begun:
    that head gets its whole time, counted from when it began."""
    monkeypatch.setattr(connection, "HEAD_TIMEOUT", 1.0)
    with live_server(create_app(archive), http=BoundedHttpToolsProtocol) as url:
        port = int(url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(HEAD + b"\r\n")  # the timer set now fires in 1 s
            assert _response(sock).startswith(b"HTTP/1.1 200 ")
            time.sleep(0.6)
            sock.sendall(HEAD)  # a head begun 0.6 s later, never completed
            answer, waited = _answer(sock, timeout=5)
            assert answer.startswith(b"HTTP/1.1 408 ")
            assert 0.8 < waited < 2


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(archive: Path) -> None:
    options = {"http": BoundedHttpToolsProtocol, "timeout_keep_alive": 0.5}
    with live_server(create_app(archive), **options) as url:  # type: ignore[arg-type]
        port = int(url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            # Busy for longer than the timeout: kept, each answer's idle time its own.
            started = time.monotonic()
            while time.monotonic() - started < 1.5:
                sock.sendall(HEAD + b"\r\n")
                assert _response(sock).startswith(b"HTTP/1.1 200 ")
                time.sleep(0.3)
            # Then idle: closed about 0.5 s after the last answer.
            answer, waited = _answer(sock, timeout=5)
            assert answer == b""
            assert 0.1 < waited < 1.5


def test_a_stalled_body_is_closed(archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "BODY_IDLE_TIMEOUT", 0.5)
    app = create_app(archive)
    with live_server(app, http=BoundedHttpToolsProtocol) as url:
        port = int(url.split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                b"POST /dicomweb/studies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/dicom\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10
            )
            _, waited = _answer(sock, timeout=10)
            assert waited < 3
        assert httpx.get(f"{url}/studies").status_code == 200


@pytest.mark.parametrize("path", ["/dicomweb/studies/", "/dicomweb/studies%2F"])
def test_no_redirect_is_built_from_the_host_header(served: tuple[str, int], path: str) -> None:
    response = httpx.get(f"http://{served[0]}:{served[1]}{path}", headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.json()["status"] == 404


@pytest.mark.parametrize(("path", "location"), [("/dicomweb", "./"), ("/dicomweb/", "../")])
def test_the_service_root_redirects_relatively(
    served: tuple[str, int], path: str, location: str
) -> None:
    # The one redirect (to the study browser at /): never built from the Host header.
    response = httpx.get(f"http://{served[0]}:{served[1]}{path}", headers={"Host": "evil.example"})
    assert response.status_code == 303
    assert response.headers["location"] == location


@pytest.mark.parametrize("protocol", [BoundedHttpToolsProtocol, DirectFramesProtocol])
def test_a_malformed_request_is_answered_after_those_before_it(
    archive: Path, protocol: type[BoundedHttpToolsProtocol]
) -> None:
    """Pipelined behind others, it is answered 400 once they are answered, in
    order; its connection closes, and the server logs no error (its answers to
    the earlier requests had failed, each an error with a traceback)."""
    study = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    frame = "/dicomweb/" + paths.frame_path(
        study.StudyInstanceUID, study.SeriesInstanceUID, study.SOPInstanceUID, 1
    )
    usual = f"GET {frame} HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n".encode()
    missing = b"GET /dicomweb/studies/1.2.3 HTTP/1.1\r\nHost: x\r\n\r\n"
    malformed = b"get /dicomweb/studies HTTP/1.1\r\nHost: x\r\n\r\n"
    with live_server(create_app(archive), http=protocol, access_log=False) as url:
        address = ("127.0.0.1", int(url.rpartition(":")[2].partition("/")[0]))
        with errors_logged("uvicorn.error") as errors:
            for pipelined in (usual + missing, missing * 2, usual):
                for _ in range(10):
                    with socket.create_connection(address) as sock:
                        sock.sendall(pipelined + malformed)
                        received, _ = _answer(sock, 10)
                    statuses = re.findall(rb"HTTP/1.1 (\d{3}) ", received)
                    expected = [b"200" if p == usual else b"404" for p in _split(pipelined)]
                    assert statuses == [*expected, b"400"]
    assert not errors, errors[:3]


def _split(pipelined: bytes) -> list[bytes]:
    return [request + b"\r\n\r\n" for request in pipelined.split(b"\r\n\r\n")[:-1]]


def test_the_uvicorn_internals_relied_on_are_there() -> None:
    """The protocol reads uvicorn's per-connection state (``transport``, ``flow``,
    ``cycle``, ``loop``) and extends its parser callbacks: a uvicorn without them
    fails here, by name, instead of leaving connections unbounded (see the bound
    on uvicorn in pyproject.toml)."""
    for name in (
        "connection_made",
        "connection_lost",
        "data_received",
        "on_message_begin",
        "on_headers_complete",
        "on_message_complete",
        "send_400_response",
    ):
        assert callable(getattr(HttpToolsProtocol, name, None)), name

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def connect() -> None:
        loop = asyncio.get_running_loop()
        config = uvicorn.Config(app, http=BoundedHttpToolsProtocol, lifespan="off")
        protocol = BoundedHttpToolsProtocol(config, ServerState(), {}, _loop=loop)
        ours, theirs = socket.socketpair()
        with theirs:
            await loop.connect_accepted_socket(lambda: protocol, ours)
            assert protocol.loop is loop
            assert isinstance(protocol.transport, asyncio.Transport)
            assert protocol.flow.read_paused is False
            assert protocol.cycle is None
            protocol.data_received(HEAD + b"\r\n")
            for _ in range(100):
                if protocol.cycle.response_complete:
                    break
                await asyncio.sleep(0.01)
            assert protocol.cycle.response_complete is True
            protocol.transport.close()
            await asyncio.sleep(0)

    asyncio.run(connect())
