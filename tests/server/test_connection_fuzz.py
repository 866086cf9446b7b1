"""Seeded raw HTTP/1.1 exchanges against both ways ``dwa serve`` answers a frame.

Requests are drawn from what the fast paths read and what a client may get
wrong: methods, versions, frame numbers, paths with a query, an escape or a
double slash, every ``Accept`` a viewer sends and some no one should, ranges,
validators, ``Connection``, bodies, proxy headers, malformed requests; one to
three pipelined on a connection.  The connection that answers the usual frame
request itself (:mod:`dicomweb_archive.server.directframes`) must send the same
bytes as the application alone (its fast path off), and neither may log an
error: whatever a client sends is answered, not a fault of the server.
"""

from __future__ import annotations

import random
import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomweb_archive.model import paths
from dicomweb_archive.server.app import create_app
from dicomweb_archive.server.connection import BoundedHttpToolsProtocol
from dicomweb_archive.server.directframes import DirectFramesProtocol
from dicomweb_archive.server.fastpath import UsualFrames
from tests.conftest import errors_logged
from tests.server.conftest import converted
from tests.server.live import live_server

SEED = 20261207
EXCHANGES = 600
NAMES = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm", "emri_small.dcm"]
OHIF = "multipart/related; type=application/octet-stream; transfer-syntax=*"
ACCEPTS = [
    OHIF,
    OHIF,
    "*/*",
    None,
    'multipart/related; type="application/octet-stream"',
    "multipart/related; type=application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1",
    f"{OHIF}, */*;q=0.1",
    "multipart/related;type=application/octet-stream;transfer-syntax=*",
    OHIF.upper(),
    "application/octet-stream",
    "image/jp2",
    "multipart/related; type=image/jp2",
    f"{OHIF};q=0",
    "text/html",
    "",
    f"{OHIF},",
    'multipart/related; type=application/octet-stream; transfer-syntax="*"',
]
#: Validators asked for: the frames' own ETags join them.
ETAGS = ["*", '"x"', 'W/"x"', "garbage"]
#: The last request of every connection: answered, then the connection closes.
CLOSING = b"GET /dicomweb/studies/1.2.3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, list[str]]]:
    """The archive served by the application alone and by the direct connection
    (each frame asked once, so that it knows its head), and the frames' paths;
    their ETags join the validators asked for."""
    archive = converted(tmp_path_factory, "folders", NAMES)
    frames = []
    for name in NAMES:
        ds = pydicom.dcmread(get_testdata_file(name), stop_before_pixels=True)
        uids = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
        frames.append("/dicomweb/" + paths.frame_path(*uids, 1).rpartition("/")[0])
    alone, direct = create_app(archive), create_app(archive)
    stack = alone.build_middleware_stack()
    assert isinstance(stack, UsualFrames)
    stack.enabled = False
    alone.middleware_stack = stack
    options: dict[str, Any] = {"access_log": False}
    with (
        live_server(alone, http=BoundedHttpToolsProtocol, **options) as alone_url,
        live_server(direct, http=DirectFramesProtocol, **options) as direct_url,
    ):
        ports = [int(url.rpartition(":")[2].partition("/")[0]) for url in (alone_url, direct_url)]
        for port in ports:
            for frame in frames:
                url = f"http://127.0.0.1:{port}{frame}/1"
                response = httpx.get(url, headers={"Accept": OHIF})
                assert response.status_code == 200
                ETAGS.append(response.headers["etag"])
        yield ports[0], ports[1], frames


def _target(rng: random.Random, frames: list[str]) -> str:
    number = rng.choice(["1", "1", "1", "2", "0", "01", "1,1", "1,2", "99", "-1", "%31", "1/"])
    path = f"{rng.choice(frames)}/{number}"
    odd = [path + "?", path + "?x=1", path + "#f", path.replace("/studies/", "//studies/")]
    odd += [path.replace("/frames/", "/Frames/"), path.replace("studies", "x/../studies")]
    return rng.choice([path] * 10 + odd)


def _request(rng: random.Random, frames: list[str]) -> bytes:
    method = rng.choice(["GET"] * 8 + ["HEAD", "HEAD", "POST", "get", "OPTIONS"])
    version = rng.choice(["1.1"] * 8 + ["1.0"])
    headers = [("Host", "127.0.0.1")] if rng.random() < 0.95 else []
    accept = rng.choice(ACCEPTS)
    if accept is not None:
        headers.append((rng.choice(["Accept", "accept", "ACCEPT"]), accept))
    for chance, name, values in (
        (0.1, "Accept", [a or "*/*" for a in ACCEPTS]),
        (0.15, "Range", ["bytes=0-10", "bytes=-5", "bytes=100000000-", "bytes=5-1", "items=0-1"]),
        (0.15, "If-None-Match", ETAGS),
        (0.1, "If-Modified-Since", ["Sat, 01 Jan 2000 00:00:00 GMT", "nonsense"]),
        (0.1, "If-Match", ETAGS),
        (0.05, "If-Unmodified-Since", ["Sat, 01 Jan 2000 00:00:00 GMT", "nonsense"]),
        (0.05, "If-Range", [*ETAGS[1:], "Sat, 01 Jan 2000 00:00:00 GMT"]),
        (0.1, "Connection", ["close", "keep-alive", "Close", "upgrade"]),
        (0.05, "Content-Length", ["0", "3"]),
        (0.05, "X-Forwarded-For", ["192.0.2.1"]),
        (0.05, "Expect", ["100-continue"]),
        (0.05, "Cache-Control", ["no-cache"]),
    ):
        if rng.random() < chance:
            headers.append((name, rng.choice(values)))
    rng.shuffle(headers)
    head = f"{method} {_target(rng, frames)} HTTP/{version}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    body = b"abc" if ("Content-Length", "3") in headers else b""
    return head.encode() + body


def _exchange(port: int, requests: bytes) -> bytes:
    """What the server sends for ``requests`` then :data:`CLOSING`, until it closes."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        sock.sendall(requests + CLOSING)
        received = b""
        while chunk := sock.recv(1 << 20):
            received += chunk
    return re.sub(rb"date: [^\r]*\r\n", b"", received)


def test_the_direct_connection_answers_as_the_application(
    servers: tuple[int, int, list[str]],
) -> None:
    alone, direct, frames = servers
    rng = random.Random(SEED)
    with errors_logged("uvicorn.error") as errors:
        for number in range(EXCHANGES):
            requests = b"".join(_request(rng, frames) for _ in range(rng.choice([1, 1, 2, 3])))
            assert _exchange(alone, requests) == _exchange(direct, requests), (number, requests)
    assert not errors, errors[:3]
