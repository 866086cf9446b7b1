"""The access log (one JSON line per request) and the Cross-Origin-Resource-Policy header."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydicom.data import get_testdata_file
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.server import middleware
from dicomweb_archive.server.app import create_app
from dicomweb_archive.server.middleware import (
    ACCESS_LOGGER,
    AccessLog,
    ResourcePolicy,
    enable_access_log,
    flush_access_log,
)
from dicomweb_archive.server.pathsend import PATHSEND


async def _hello(request: Request) -> Response:
    return PlainTextResponse("hello world")


async def _fails(request: Request) -> Response:
    raise RuntimeError("broken")


def _app() -> Starlette:
    return Starlette(routes=[Route("/hello", _hello), Route("/fails", _fails)])


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger of its own, so the records seen are this test's."""
    logger = logging.getLogger("tests.access")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger.addHandler(handler)
    logger.records = records  # type: ignore[attr-defined]
    yield logger
    logger.removeHandler(handler)


def _entries(logger: logging.Logger) -> list[dict[str, object]]:
    return [orjson.loads(r.getMessage()) for r in logger.records]  # type: ignore[attr-defined]


def test_one_json_line_per_request(logger: logging.Logger) -> None:
    with TestClient(AccessLog(_app(), logger)) as client:
        client.get("/hello", params={"a": "1"}, headers={"Range": "bytes=0-4"})
        client.get("/hello")
        client.get("/missing")
    first, second, missing = _entries(logger)
    assert first["method"] == "GET" and first["path"] == "/hello"
    assert (first["status"], first["bytes"], first["query"], first["range"]) == (
        200,
        len("hello world"),
        "a=1",
        "bytes=0-4",
    )
    assert first["client"] == "testclient"
    assert isinstance(first["ms"], float) and first["ms"] >= 0
    # What the request did not have is left out.
    assert "query" not in second and "range" not in second
    assert missing["status"] == 404


def test_a_request_that_fails_is_logged_as_500(logger: logging.Logger) -> None:
    with TestClient(AccessLog(_app(), logger), raise_server_exceptions=False) as client:
        assert client.get("/fails").status_code == 500
    [entry] = _entries(logger)
    assert (entry["path"], entry["status"]) == ("/fails", 500)


def test_nothing_is_logged_below_info(logger: logging.Logger) -> None:
    logger.setLevel(logging.WARNING)
    with TestClient(AccessLog(_app(), logger)) as client:
        assert client.get("/hello").text == "hello world"
    assert _entries(logger) == []


def test_only_http_is_logged(logger: logging.Logger) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])
        if scope["type"] == "lifespan":
            message = await receive()
            assert message["type"] == "lifespan.startup"
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await PlainTextResponse("ok")(scope, receive, send)

    with TestClient(AccessLog(app, logger)) as client:
        client.get("/")
    assert seen == ["lifespan", "http"]
    assert [e["path"] for e in _entries(logger)] == ["/"]


def test_enable_access_log_adds_one_handler() -> None:
    access = logging.getLogger(ACCESS_LOGGER)
    saved = (access.handlers[:], access.level, access.propagate)
    try:
        access.handlers = [h for h in access.handlers if not getattr(h, "dwa_access_log", False)]
        enable_access_log()
        enable_access_log()
        added = [h for h in access.handlers if getattr(h, "dwa_access_log", False)]
        assert len(added) == 1
        assert access.isEnabledFor(logging.INFO) and not access.propagate
        record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, "", 0, '{"a":1}', (), None)
        assert added[0].format(record) == '{"a":1}'  # the line, bare
    finally:
        access.handlers, access.level, access.propagate = saved


@pytest.fixture
def access_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, io.StringIO]]:
    """``dwa serve``'s access log handler alone on its logger, writing to a string."""
    access = logging.getLogger(ACCESS_LOGGER)
    saved = (access.handlers[:], access.level, access.propagate, access.filters[:])
    written = io.StringIO()
    try:
        access.handlers = []
        enable_access_log()
        [handler] = access.handlers
        monkeypatch.setattr(handler, "stream", written)
        yield handler, written
    finally:
        access.handlers, access.level, access.propagate, access.filters = saved


def test_the_lines_of_dwa_serve_are_written_directly_and_alike(
    access_handler: tuple[Any, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, written = access_handler
    access = logging.getLogger(ACCESS_LOGGER)
    access.handlers = [handler]  # alone (pytest adds its capture's for the test's call)
    made: list[logging.LogRecord] = []
    monkeypatch.setattr(logging.LogRecord, "__init__", _counting(made))
    with TestClient(AccessLog(_app())) as client:
        client.get("/hello")
        assert made == []  # no record: the line goes straight to the stream
        access.addFilter(lambda record: True)  # then logging's way, the same line
        client.get("/hello", headers={"Range": "bytes=0-1"})
    handler.flush()  # the lines are held a while (test_lines_are_held_then_written)
    lines = [orjson.loads(line) for line in written.getvalue().splitlines()]
    assert [(e["path"], e["status"], e["bytes"]) for e in lines] == [("/hello", 200, 11)] * 2
    assert "range" not in lines[0] and lines[1]["range"] == "bytes=0-1"
    assert len(made) == 1


def test_lines_are_held_then_written(
    access_handler: tuple[Any, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the event loop the lines wait for a timer (one write for many), in order."""
    handler, written = access_handler
    monkeypatch.setattr(middleware, "HELD_SECONDS", 0.05)

    async def serve() -> list[str]:
        seen = []
        handler.write_line('{"n":1}')
        handler.write_line('{"n":2}')
        seen.append(written.getvalue())
        # A record through logging's way joins the lines held, after them.
        record = logging.makeLogRecord({"msg": '{"n":3}', "levelno": logging.INFO})
        handler.handle(record)
        seen.append(written.getvalue())
        for _ in range(200):  # until the timer has written them
            await asyncio.sleep(0.01)
            if written.getvalue():
                break
        seen.append(written.getvalue())
        handler.write_line('{"n":4}')  # a new batch, a new timer
        seen.append(written.getvalue())
        for _ in range(200):
            await asyncio.sleep(0.01)
            if written.getvalue().count("\n") == 4:
                break
        seen.append(written.getvalue())
        return seen

    first, recorded, timed, again, later = asyncio.run(serve())
    assert first == recorded == ""
    assert timed == '{"n":1}\n{"n":2}\n{"n":3}\n'
    assert again == timed
    assert later == timed + '{"n":4}\n'


def test_many_lines_or_no_event_loop_are_written_at_once(
    access_handler: tuple[Any, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, written = access_handler
    handler.write_line("outside any event loop")
    assert written.getvalue() == "outside any event loop\n"
    monkeypatch.setattr(middleware, "HELD_CHARACTERS", 30)

    async def serve() -> list[str]:
        seen = []
        for n in range(4):
            handler.write_line(f"line {n:03d} of ten chars")
            seen.append(written.getvalue().removeprefix("outside any event loop\n"))
        return seen

    seen = asyncio.run(serve())
    one, two = "line 000 of ten chars\n", "line 001 of ten chars\n"
    assert seen[0] == ""  # 21 characters held
    assert seen[1] == seen[2] == one + two  # 42 written
    assert seen[3] == one + two + "line 002 of ten chars\n" + "line 003 of ten chars\n"


def test_the_lines_held_are_written_on_shutdown(
    access_handler: tuple[Any, io.StringIO], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The application's shutdown, and the process's exit (logging.shutdown), write them."""
    handler, written = access_handler
    monkeypatch.setattr(middleware, "HELD_SECONDS", 600.0)  # no timer writes them here
    archive = tmp_path / "archive"
    source = get_testdata_file("CT_small.dcm")
    assert Converter(archive, ConvertOptions(workers=1)).convert([source]).ok
    with TestClient(create_app(archive)) as client:
        assert client.get("/dicomweb/studies").status_code == 200
        assert client.get("/dicomweb/studies").status_code == 200
        assert written.getvalue() == ""
    lines = [orjson.loads(line) for line in written.getvalue().splitlines()]
    assert [(e["path"], e["status"]) for e in lines] == [("/dicomweb/studies", 200)] * 2

    async def serve() -> None:
        handler.write_line("at exit")

    asyncio.run(serve())
    assert not written.getvalue().endswith("at exit\n")
    flush_access_log()  # what logging.shutdown asks every handler at the process's exit
    assert written.getvalue().endswith("at exit\n")


def _counting(made: list[logging.LogRecord]) -> Any:
    original = logging.LogRecord.__init__

    def init(self: logging.LogRecord, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        original(self, *args, **kwargs)

    return init


def test_every_answer_may_be_loaded_cross_origin() -> None:
    with TestClient(ResourcePolicy(_app()), raise_server_exceptions=False) as client:
        for path, status in (("/hello", 200), ("/missing", 404), ("/fails", 500)):
            response = client.get(path)
            assert response.status_code == status
            assert response.headers["cross-origin-resource-policy"] == "cross-origin", path
        # Once, whatever else the answer carries.
        headers = client.get("/hello").headers
        assert headers.get_list("cross-origin-resource-policy") == ["cross-origin"]
        assert headers["content-type"].startswith("text/plain")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("middleware") / "archive"
    result = Converter(root, ConvertOptions(workers=1)).convert([get_testdata_file("CT_small.dcm")])
    assert result.ok
    return root


def test_the_server_logs_and_allows_cross_origin(
    archive: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        TestClient(create_app(archive)) as client,
        caplog.at_level("INFO", logger=ACCESS_LOGGER),
    ):
        response = client.get("/dicomweb/studies", headers={"Range": "bytes=0-9"})
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"
    [record] = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    entry = orjson.loads(record.getMessage())
    assert entry["method"] == "GET" and entry["path"] == "/dicomweb/studies"
    assert (entry["status"], entry["bytes"], entry["range"]) == (
        response.status_code,
        len(response.content),
        "bytes=0-9",
    )


def test_a_file_sent_by_the_server_counts_its_announced_length(logger: logging.Logger) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"1234")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": PATHSEND, "path": "/proc/self/fd/0"})

    sent: list[str] = []

    async def send(message: Message) -> None:
        sent.append(message["type"])

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/file", "headers": []}
    asyncio.run(AccessLog(app, logger)(scope, receive, send))
    assert sent == ["http.response.start", PATHSEND]
    [entry] = _entries(logger)
    assert (entry["status"], entry["bytes"]) == (200, 1234)


@pytest.mark.parametrize(
    ("client", "query", "status", "asked"),
    [
        (("10.0.0.1", 5000), b"", 200, b""),
        (None, b"a=1&b=%C3%A9", 206, b"bytes=0-1"),
        (("::1", 1), b"", 0, b'bytes="odd"\\'),
    ],
)
def test_a_line_is_its_entry_in_json(
    access_handler: tuple[Any, io.StringIO],
    client: tuple[str, int] | None,
    query: bytes,
    status: int,
    asked: bytes,
) -> None:
    """The line made in pieces (an opening kept per frame, then the answer's values)
    is the JSON object of the request's entry, keys of no value left out."""
    handler, written = access_handler
    logging.getLogger(ACCESS_LOGGER).handlers = [handler]
    scope = {
        "client": client,
        "method": "GET",
        "path": '/x/"é"',
        "query_string": query,
        "headers": [(b"range", asked)] if asked else [],
    }
    AccessLog(_app()).record(scope, status, 12, 0.0)
    handler.flush()
    line = written.getvalue().removesuffix("\n")
    entry = orjson.loads(line)
    expected = {
        "client": client[0] if client else None,
        "method": "GET",
        "path": '/x/"é"',
        "query": query.decode("latin-1") or None,
        "status": status or 500,
        "bytes": 12,
        "ms": entry["ms"],
        "range": asked.decode("latin-1") or None,
    }
    assert line == orjson.dumps({k: v for k, v in expected.items() if v is not None}).decode()
