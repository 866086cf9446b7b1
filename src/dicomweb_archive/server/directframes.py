"""The usual frame request answered by ``dwa serve``'s connection itself, with no ASGI.

:class:`~.fastpath.UsualFrames` answers the request a viewer sends by the
hundred ahead of Starlette, but uvicorn still builds an ASGI scope, a
request-response cycle and a task for it, and writes the head through its
``send``: about half of what is left of a frame's CPU in Python.
:class:`DirectFramesProtocol` answers it in the parser's callback, as soon as
the head is complete: the head the fast path knows, then the file by
``sendfile`` (:mod:`.sendfile`), then what uvicorn does after an answer (the
next pipelined request, the keep-alive deadline).  The answer is the same bytes
as the application's; ``tests/server/test_fastpath.py`` compares them.

The connection answers only a ``GET`` over HTTP/1.1 with no body, no query
string, no ``%`` in its path, no ``Expect``, ``Upgrade`` nor
``X-Forwarded-…`` header (uvicorn's proxy middleware would change the client
the access log names), on a plain-TCP connection with nothing else being
answered or buffered; the fast path then
decides as for any server (:meth:`~.fastpath.UsualFrames.prepared`).  Anything
else goes to uvicorn unchanged, the first frame of each kind included: its
answer teaches the fast path the head.

When the socket takes the whole answer at once (the usual case) nothing waits;
else a task sends the rest as room appears, the file kept open, reading paused
by uvicorn if more requests come meanwhile, never more than the head held in
memory.
"""

from __future__ import annotations

import time
from typing import Any, Final

import httptools
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE
from uvicorn.protocols.utils import get_client_addr

from dicomweb_archive.server.connection import BoundedHttpToolsProtocol
from dicomweb_archive.server.fastpath import UsualFrames
from dicomweb_archive.server.sendfile import finish_file, start_file
from dicomweb_archive.store.slices import OpenedFile

#: Request headers with which the application answers.
_DECLINED: Final = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"upgrade",
        b"x-forwarded-for",
        b"x-forwarded-proto",
    }
)
_OK: Final = STATUS_LINE[200]
_CLOSE: Final = b"connection: close\r\n"


class _NothingWaits:
    """The event of a request answered here: nothing waits for its body."""

    __slots__ = ()

    def set(self) -> None:
        pass


class _Answer:
    """Stands for uvicorn's request-response cycle while (and after) a request is
    answered here: uvicorn's protocol reads and sets these few attributes."""

    __slots__ = ("body", "disconnected", "keep_alive", "more_body", "response_complete")
    message_event: Final = _NothingWaits()

    def __init__(self, keep_alive: bool, complete: bool) -> None:
        self.keep_alive = keep_alive
        self.response_complete = complete
        self.disconnected = False
        self.more_body = False
        self.body = b""


#: An answer sent whole (the same for every such request: nothing of it changes).
_SENT: Final = _Answer(keep_alive=True, complete=True)


class DirectFramesProtocol(BoundedHttpToolsProtocol):
    """The bounded connection, answering the usual frame request itself; see the module."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._defaults: tuple[object, bytes] = (None, b"")

    def _answered_here(self) -> bool:
        started = time.perf_counter()
        usual = self._usual_frames()
        cycle, parser, transport = self.cycle, self.parser, self.transport
        if (
            usual is None
            or self._socket_fd < 0
            or (cycle is not None and not cycle.response_complete)
            or self.pipeline
            or transport.is_closing()
            or transport.get_write_buffer_size()
            or parser.get_method() != b"GET"
            or parser.get_http_version() != "1.1"
            or self.root_path
            or self._at_limit()
            or any(name in _DECLINED for name, _ in self.headers)
        ):
            return False
        url = httptools.parse_url(self.url)
        raw = url.path
        if url.query or b"%" in raw or not raw.isascii():
            return False
        path = raw.decode("ascii")
        prepared = usual.prepared(path, self.headers)
        if prepared is None:
            return False
        lines, opened = prepared
        keep_alive = parser.should_keep_alive()
        head = b"".join((_OK, self._default_lines(), lines, b"" if keep_alive else _CLOSE, b"\r\n"))
        self._send(head, opened, keep_alive, usual, path, started)
        return True

    def _usual_frames(self) -> UsualFrames | None:
        """The application's fast path, when uvicorn runs the application alone (its
        proxy middleware aside) and the fast path is built and on; else None."""
        app: Any = self.app
        if isinstance(app, ProxyHeadersMiddleware):
            app = app.app
        usual = getattr(app, "middleware_stack", None)
        return usual if isinstance(usual, UsualFrames) and usual.enabled else None

    def _at_limit(self) -> bool:
        """Whether uvicorn would answer 503 (its ``limit_concurrency``)."""
        limit = self.limit_concurrency
        return limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit)

    def _default_lines(self) -> bytes:
        """uvicorn's headers of every answer (``date``, ``server``), as it writes them."""
        defaults = self.server_state.default_headers
        if self._defaults[0] is not defaults:  # uvicorn makes a new list when the date changes
            lines = b"".join(b"%s: %s\r\n" % (name.lower(), value) for name, value in defaults)
            self._defaults = (defaults, lines)
        return self._defaults[1]

    def _send(
        self,
        head: bytes,
        opened: OpenedFile,
        keep_alive: bool,
        usual: UsualFrames,
        path: str,
        started: float,
    ) -> None:
        size = opened.size
        transport = self.transport
        try:
            rest, sent = start_file(self._socket_fd, self._socket_kind, head, opened.fd, size)
        except (BrokenPipeError, ConnectionResetError):
            transport.close()
            rest, sent = b"", size
        except OSError as error:  # the file is shorter than measured: the answer is cut
            self.logger.error("Exception sending %s", path, exc_info=error)
            transport.close()
            rest, sent = b"", size
        if not rest and sent == size:
            answer = _SENT if keep_alive else _Answer(keep_alive, complete=True)
            self.cycle = answer  # type: ignore[assignment]  # uvicorn reads a few attributes
            self._answered(answer, usual, path, started, size)
            return
        answer = _Answer(keep_alive, complete=False)
        self.cycle = answer  # type: ignore[assignment]
        task = self.loop.create_task(
            self._send_rest(answer, rest, opened, sent, (usual, path, started, size))
        )
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _send_rest(
        self,
        answer: _Answer,
        rest: bytes,
        opened: OpenedFile,  # held open until sent
        sent: int,
        logged: tuple[UsualFrames, str, float, int],
    ) -> None:
        transport = self.transport
        try:
            await finish_file(transport, self._socket_fd, rest, opened.fd, sent, opened.size)
        except (BrokenPipeError, ConnectionResetError):
            transport.close()
        except OSError as error:
            self.logger.error("Exception sending %s", logged[1], exc_info=error)
            transport.close()
        finally:
            self._answered(answer, *logged)

    def _answered(
        self, answer: _Answer, usual: UsualFrames, path: str, started: float, size: int
    ) -> None:
        """What follows an answer: the access log's line, then as uvicorn does after
        its own (the connection closed unless kept alive, the next pipelined
        request started or the keep-alive deadline set)."""
        answer.response_complete = True
        scope = {"client": self.client, "method": "GET", "path": path, "headers": ()}
        if self.access_log:  # uvicorn's own (off in dwa serve), as its cycle writes it
            client = get_client_addr(scope)  # type: ignore[arg-type]
            self.access_logger.info('%s - "GET %s HTTP/1.1" %d', client, path, 200)
        if usual.access_log.enabled:
            usual.access_log.record(scope, 200, size, started)
        if not answer.keep_alive and not self.transport.is_closing():
            self.transport.close()
        self.on_response_complete()
