"""The usual frame request answered before Starlette: the same answers as the application's.

Two real servers (``dwa serve``'s connection, which sends files by path) over
one archive: one with the fast path, one without.  Every answer must be the
same bytes, headers included (but ``Date``), and the same access log line.
The fast one runs either connection: the bounded one, where the fast path
answers as ASGI middleware (as on any server sending files by path), and
``dwa serve``'s, which answers the usual request itself (:mod:`.directframes`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from dicomweb_archive.model import paths
from dicomweb_archive.server.app import create_app
from dicomweb_archive.server.connection import BoundedHttpToolsProtocol
from dicomweb_archive.server.directframes import DirectFramesProtocol
from dicomweb_archive.server.fastpath import UsualFrames
from dicomweb_archive.server.middleware import ACCESS_LOGGER
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.journal import Journal
from dicomweb_archive.store.packing import pack_study
from tests.server.conftest import SOURCES, converted, dataset
from tests.server.live import live_server

OHIF = "multipart/related; type=application/octet-stream; transfer-syntax=*"
ACCEPTS = [
    None,
    OHIF,
    'multipart/related; type="application/octet-stream"; transfer-syntax=*',
    "*/*",
    "application/octet-stream",
    "multipart/related; type=application/octet-stream",
    "multipart/related; type=application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1",
    'multipart/related; type="image/jls"',
    'multipart/related; type="image/jpeg"; transfer-syntax=*',
    'multipart/related; type="image/jphc"',
    "image/jpeg",
    "text/html",
]
ORIGINS = [None, "http://viewer.example"]


class Counting:
    """The application behind the fast path, counting the requests it gets."""

    def __init__(self, app: Any) -> None:
        self.app, self.calls = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


class CountedFrames(UsualFrames):
    """The fast path, counting the requests it gets as ASGI middleware."""

    calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await super().__call__(scope, receive, send)


def _served(root: Path, fast: bool) -> tuple[Starlette, CountedFrames]:
    app = create_app(root)
    stack = app.build_middleware_stack()
    assert isinstance(stack, UsualFrames)
    stack.__class__ = CountedFrames
    assert isinstance(stack, CountedFrames)
    stack.enabled = fast
    stack.app = Counting(stack.app)
    app.middleware_stack = stack
    return app, stack


@pytest.fixture(params=[BoundedHttpToolsProtocol, DirectFramesProtocol])
def protocol(request: pytest.FixtureRequest) -> type[BoundedHttpToolsProtocol]:
    """The fast server's connection."""
    chosen: type[BoundedHttpToolsProtocol] = request.param
    return chosen


class Pair:
    """The same archive served with and without the fast path."""

    def __init__(self, root: Path, protocol: type[BoundedHttpToolsProtocol]) -> None:
        self.root = root
        self.protocol = protocol
        self.lines: list[str] = []

    @contextlib.contextmanager
    def running(self) -> Iterator[Pair]:
        normal_app, self.normal = _served(self.root, fast=False)
        fast_app, self.fast = _served(self.root, fast=True)
        # uvicorn's own access log off, as dwa serve runs it.
        options: dict[str, Any] = {"base_path": "", "access_log": False}
        with (
            live_server(normal_app, http=BoundedHttpToolsProtocol, **options) as self.normal_url,
            live_server(fast_app, http=self.protocol, **options) as self.fast_url,
            httpx.Client(timeout=30) as self.client,
        ):
            yield self

    @property
    def direct(self) -> bool:
        """Whether the fast server's connection answers the usual request itself."""
        return self.protocol is DirectFramesProtocol

    @property
    def behind_fast_path(self) -> int:
        """Requests the fast server's application answered (not the fast path)."""
        counting = self.fast.app
        assert isinstance(counting, Counting)
        return counting.calls

    def compare(self, path: str, headers: dict[str, str], method: str = "GET") -> httpx.Response:
        """Ask both; the answers (and access log lines) must be the same."""
        answers, lines = [], []
        for root in (self.fast_url, self.normal_url):  # the fast first: what it sees is unsettled
            del self.lines[:]
            answer = self.client.request(method, f"{root}{path}", headers=headers)
            answers.append(answer)
            deadline = time.monotonic() + 10
            while not self.lines and time.monotonic() < deadline:
                time.sleep(0.001)  # written once the answer is sent
            lines.append([_without_duration(line) for line in self.lines])
        fast, normal = answers
        assert fast.status_code == normal.status_code, path
        assert _head(fast) == _head(normal), (path, headers)
        assert fast.content == normal.content, (path, headers)
        assert lines[0] == lines[1] != []
        return fast


def _head(response: httpx.Response) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in response.headers.raw if k.lower() != b"date"]


def _without_duration(line: str) -> str:
    head, _, rest = line.partition('"ms":')
    return head + rest.partition(",")[2]


@pytest.fixture
def access_lines() -> Iterator[list[str]]:
    """The access log's lines while the test runs."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger(ACCESS_LOGGER)
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return converted(tmp_path_factory, "folders", SOURCES)


def _frame_urls(root: Path) -> list[str]:
    found = sorted(root.glob("studies/*/series/*/instances/*/frames/*"))
    assert len(found) >= len(SOURCES)
    return [f"/dicomweb/{f.relative_to(root).as_posix()}" for f in found]


def _asked(accept: str | None, origin: str | None) -> dict[str, str]:
    headers = {}
    if accept is not None:
        headers["Accept"] = accept
    if origin is not None:
        headers["Origin"] = origin
    return headers


def test_every_frame_and_accept_answers_the_same_bytes(
    reference: Path, access_lines: list[str], protocol: type[BoundedHttpToolsProtocol]
) -> None:
    pair = Pair(reference, protocol)
    pair.lines = access_lines
    urls = _frame_urls(reference)
    with pair.running():
        for _ in range(2):  # learning the heads, then answering with them
            for url in urls:
                for accept in ACCEPTS:
                    for origin in ORIGINS:
                        pair.compare(url, _asked(accept, origin))
        asked, middleware = pair.behind_fast_path, pair.fast.calls
        for url in urls:
            for origin in ORIGINS:
                pair.compare(url, _asked(OHIF, origin))
        # OHIF's request of every stored frame went by the fast path: on
        # dwa serve's connection, answered there with no ASGI call at all.
        assert pair.behind_fast_path == asked
        assert pair.fast.calls == middleware + (0 if pair.direct else 2 * len(urls))


def test_other_requests_go_to_the_application(
    reference: Path, access_lines: list[str], protocol: type[BoundedHttpToolsProtocol]
) -> None:
    pair = Pair(reference, protocol)
    pair.lines = access_lines
    ct = dataset("CT_small.dcm")
    url = paths.frame_path(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID, 1)
    url = f"/dicomweb/{url}"
    with pair.running():
        etag = pair.compare(url, {"Accept": OHIF}).headers["etag"]
        pair.compare(url, {"Accept": OHIF})
        learned = pair.behind_fast_path
        others: list[tuple[str, dict[str, str], str]] = [
            (url, {"Accept": OHIF, "Range": "bytes=0-99"}, "GET"),
            (url, {"Accept": OHIF, "If-None-Match": etag}, "GET"),
            (url, {"Accept": OHIF, "If-Range": etag, "Range": "bytes=10-"}, "GET"),
            (url, {"Accept": OHIF}, "HEAD"),
            (f"{url}?accept=application/octet-stream", {}, "GET"),
            (url.replace("/frames/1", "/frames/01"), {"Accept": OHIF}, "GET"),
            (url.replace("/frames/1", "/frames/1,1"), {"Accept": OHIF}, "GET"),
            (url.replace("/frames/1", "/frames/2"), {"Accept": OHIF}, "GET"),
            (url.replace("/frames/1", "/Frames/1"), {"Accept": OHIF}, "GET"),
            (url + "/", {"Accept": OHIF}, "GET"),
            (url.replace("/instances/", "/instances/1.2.3"), {"Accept": OHIF}, "GET"),
            (url.replace("/series/", "/series/../"), {"Accept": OHIF}, "GET"),
        ]
        for path, headers, method in others:
            pair.compare(path, headers, method)
        assert pair.behind_fast_path == learned + len(others)
        # The fast path's (ASGI's or the connection's, which leaves these to ASGI).
        either: list[tuple[str, dict[str, str]]] = [
            (url, {"Accept": OHIF, "Connection": "close"}),
            (url, {"Accept": OHIF, "X-Forwarded-For": "10.1.2.3"}),  # the client logged
            (url.replace("/frames/1", "/frames/%31"), {"Accept": OHIF}),
            (url, {"Accept": OHIF}),
        ]
        for path, headers in either:
            pair.compare(path, headers)
        assert pair.behind_fast_path == learned + len(others)


def test_a_changed_packed_or_stale_study_goes_by_the_application(
    tmp_path_factory: pytest.TempPathFactory,
    access_lines: list[str],
    protocol: type[BoundedHttpToolsProtocol],
) -> None:
    root = converted(tmp_path_factory, "folders", ["CT_small.dcm"])
    pair = Pair(root, protocol)
    pair.lines = access_lines
    ct = dataset("CT_small.dcm")
    relative = paths.frame_path(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID, 1)
    url, asked = f"/dicomweb/{relative}", {"Accept": OHIF}
    with pair.running():
        before = pair.compare(url, asked)
        pair.compare(url, asked)
        fast = pair.behind_fast_path
        # A writer replaces the frame: new bytes, a new validator, at once.
        stored = (root / relative).read_bytes()
        changed = stored[:-40] + bytes(reversed(stored[-40:-20])) + stored[-20:]
        (root / "replacement").write_bytes(changed)
        os.replace(root / "replacement", root / relative)
        after = pair.compare(url, asked)
        assert after.content == changed
        assert after.headers["etag"] != before.headers["etag"]
        pair.compare(url, asked)
        assert pair.behind_fast_path == fast
        # Documents behind (a STOW-RS wrote the study): the application settles them.
        archive = open_archive(root)
        Journal(archive).mark_stale(ct.StudyInstanceUID)
        pair.compare(url, asked)
        assert pair.behind_fast_path == fast + 1
        pair.compare(url, asked)
        assert pair.behind_fast_path == fast + 1  # settled by then
        # Packed (the folder kept): the ZIP is the study.
        pack_study(archive, ct.StudyInstanceUID)
        pair.compare(url, asked)
        assert pair.behind_fast_path == fast + 2
