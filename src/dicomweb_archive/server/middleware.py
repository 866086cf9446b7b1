"""ASGI middleware of the server: a structured access log and CORP headers."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dicomweb_archive.server.pathsend import PATHSEND

ACCESS_LOGGER = "dicomweb_archive.access"


class _AccessLines(logging.StreamHandler):  # type: ignore[type-arg]
    """The access log's lines, bare, on standard error."""

    dwa_access_log = True

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    def write_line(self, line: str) -> None:
        """Write ``line`` as :meth:`emit` would, with no log record made.

        Only the event loop writes the access log: no lock is needed.
        """
        try:
            self.stream.write(line + self.terminator)
            self.stream.flush()
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": line}))

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


def enable_access_log() -> None:
    """Write the access log's JSON lines, bare, to standard error."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if any(getattr(h, "dwa_access_log", False) for h in logger.handlers):
        return
    logger.addHandler(_AccessLines())
    logger.setLevel(logging.INFO)
    logger.propagate = False


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
        entry = {
            "client": client[0] if client else None,
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1") or None,
            "status": status or 500,
            "bytes": sent,
            "ms": round((time.perf_counter() - started) * 1000, 2),
            "range": asked.decode("latin-1") or None,
        }
        line = orjson.dumps({k: v for k, v in entry.items() if v is not None}).decode()
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
