"""ASGI middleware of the server: a structured access log and CORP headers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Final

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dicomweb_archive.server.pathsend import PATHSEND

ACCESS_LOGGER = "dicomweb_archive.access"
#: Most characters of access log lines held before they are written.
HELD_CHARACTERS: Final = 64 * 1024
#: Most seconds an access log line is held before it is written.
HELD_SECONDS: Final = 1.0


class _AccessLines(logging.StreamHandler):  # type: ignore[type-arg]
    """The access log's lines, bare, on standard error, written a batch at a time.

    A write per line was a tenth of a stored frame's cost in Python.  Lines are
    held until they pass :data:`HELD_CHARACTERS`, or :data:`HELD_SECONDS` after the
    first of them (a quiet server's log is that far behind at most, and a
    killed server loses at most that), or :meth:`flush` (the application's
    shutdown, the process's exit through ``logging.shutdown``).
    """

    dwa_access_log = True

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))
        self._held: list[str] = []
        self._held_size = 0
        self._timed = False

    def write_line(self, line: str) -> None:
        """Write ``line`` as :meth:`emit` would, with no log record made (held a while)."""
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            self._held.append(line)
            self._held_size += len(line)
            if self._held_size < HELD_CHARACTERS and (self._timed or self._timer_set()):
                return
        self.flush()

    def _timer_set(self) -> bool:
        """Set the timer that writes the lines held; False without an event loop here."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        loop.call_later(HELD_SECONDS, self.flush)
        self._timed = True
        return True

    def emit(self, record: logging.LogRecord) -> None:
        # Held too: the lines keep their order.
        try:
            self.write_line(self.format(record))
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Write the lines held, then flush the stream."""
        with self.lock:  # type: ignore[union-attr]
            held, self._held, self._held_size, self._timed = self._held, [], 0, False
            try:
                if held:
                    self.stream.write(self.terminator.join(held) + self.terminator)
                super().flush()
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": "\n".join(held)}))

    @classmethod
    def alone_on(cls, logger: logging.Logger) -> _AccessLines | None:
        """The handler when it is all ``logger`` writes to, unfiltered; else None."""
        handlers = logger.handlers
        if len(handlers) != 1 or logger.filters or logger.propagate:
            return None
        handler = handlers[0]
        if not isinstance(handler, cls) or handler.filters or handler.level > logging.INFO:
            return None
        return handler


def flush_access_log() -> None:
    """Write the access log's lines held (:func:`enable_access_log`'s handler)."""
    for handler in logging.getLogger(ACCESS_LOGGER).handlers:
        if isinstance(handler, _AccessLines):
            handler.flush()


def enable_access_log() -> None:
    """Write the access log's JSON lines, bare, to standard error."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if any(getattr(h, "dwa_access_log", False) for h in logger.handlers):
        return
    logger.addHandler(_AccessLines())
    logger.setLevel(logging.INFO)
    logger.propagate = False


def line_opening(client: str | None, method: str, path: str, query: str | None = None) -> str:
    """The start of a request's access log line: who asked what (a JSON object, open).

    The line is ``{"client", "method", "path", "query", "status", "bytes", "ms",
    "range"}``, without the keys of no value.
    """
    entry = {"client": client, "method": method, "path": path, "query": query}
    return orjson.dumps({k: v for k, v in entry.items() if v is not None}).decode()[:-1]


class AccessLog:
    """One JSON line per request: method, path, status, bytes sent, duration."""

    def __init__(self, app: ASGIApp, logger: logging.Logger | None = None) -> None:
        self.app = app
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        sent = 0
        announced: Iterable[tuple[bytes, bytes]] = ()

        async def observe(message: Message) -> None:
            nonlocal status, sent, announced
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                announced = message.get("headers", ())
            elif kind == "http.response.body":
                sent += len(message.get("body", b""))
            elif kind == PATHSEND:  # the server sends the file: as long as announced
                sent += next((int(v) for k, v in announced if k == b"content-length"), 0)
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            self.record(scope, status, sent, started)

    def record(self, scope: Scope, status: int, sent: int, started: float) -> None:
        """Log the line of a request answered with ``status`` and ``sent`` body bytes,
        begun at ``started`` (:func:`time.perf_counter`)."""
        asked = next((v for k, v in scope.get("headers") or () if k == b"range"), b"")
        client = scope.get("client")
        query = scope.get("query_string", b"").decode("latin-1") or None
        opening = line_opening(client[0] if client else None, scope["method"], scope["path"], query)
        self.record_opened(opening, status or 500, sent, started, asked.decode("latin-1"))

    def record_opened(
        self, opening: str, status: int, sent: int, started: float, asked: str = ""
    ) -> None:
        """Log the line ``opening`` (:func:`line_opening`) begins, of a request answered
        with ``status`` and ``sent`` body bytes, begun at ``started``
        (:func:`time.perf_counter`), that asked for the range ``asked`` (if any).

        A server answering many requests alike keeps their openings.
        """
        ms = orjson.dumps(round((time.perf_counter() - started) * 1000, 2)).decode()
        rest = f',"range":{orjson.dumps(asked).decode()}}}' if asked else "}"
        line = f'{opening},"status":{status:d},"bytes":{sent:d},"ms":{ms}{rest}'
        # Written directly when the logger has only its own handler (``dwa serve``):
        # a log record costs a tenth of a stored frame.  Else the record is made
        # directly: Logger.info would also look for its caller in the stack.
        handler = _AccessLines.alone_on(self.logger)
        if handler is not None:
            handler.write_line(line)
            return
        record = self.logger.makeRecord(self.logger.name, logging.INFO, __file__, 0, line, (), None)
        self.logger.handle(record)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class ResourcePolicy:
    """``Cross-Origin-Resource-Policy: cross-origin`` on every answer.

    Viewers running with COEP ``require-corp`` load images and video from
    another origin only with it (client-contract §8).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"cross-origin-resource-policy", b"cross-origin"),
                    ],
                }
            await send(message)

        await self.app(scope, receive, add_header)
