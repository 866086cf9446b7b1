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

The connection answers only a ``GET`` over HTTP/1.1 with no body, its target a
bare path (no query string, fragment or ``%``), no ``Expect``, ``Upgrade`` nor
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

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE
from uvicorn.protocols.utils import get_client_addr

from dicomweb_archive.server.connection import BoundedHttpToolsProtocol
from dicomweb_archive.server.fastpath import FrameFile, FrameHead, UsualFrames
from dicomweb_archive.server.middleware import line_opening
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


#: What an answer's access log line needs: the fast path, the frame, the path, the start.
_Logged = tuple[UsualFrames, FrameFile, str, float]

#: An answer sent whole (the same for every such request: nothing of it changes).
_SENT: Final = _Answer(keep_alive=True, complete=True)


class DirectFramesProtocol(BoundedHttpToolsProtocol):
    """The bounded connection, answering the usual frame request itself; see the module."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._usual: UsualFrames | None = None
        self._defaults: tuple[object, bytes] = (None, b"")

    def _answered_here(self) -> bool:
        started = time.perf_counter()
        usual = self._usual or self._usual_frames()
        cycle, parser, transport, url = self.cycle, self.parser, self.transport, self.url
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
            or url[:1] != b"/"
            or not url.isascii()
        ):
            return False
        path = url.decode("ascii")
        # The path alone (origin form): no query, fragment or escape in it.  (Looked
        # for in the text: ``bytes in bytes`` first fails to read an integer.)
        if "?" in path or "#" in path or "%" in path:
            return False
        prepared = usual.prepared(path, self.headers, _DECLINED)
        if prepared is None:
            return False
        frame, head, opened = prepared
        keep_alive = parser.should_keep_alive()
        written = self._head(frame, head, opened.size, keep_alive)
        self._send(written, opened, keep_alive, (usual, frame, path, started))
        return True

    def _usual_frames(self) -> UsualFrames | None:
        """The application's fast path, when uvicorn runs the application alone (its
        proxy middleware aside) and the fast path is built and on; else None.
        Kept for the connection once found."""
        app: Any = self.app
        if isinstance(app, ProxyHeadersMiddleware):
            app = app.app
        usual = getattr(app, "middleware_stack", None)
        if isinstance(usual, UsualFrames) and usual.enabled:
            self._usual = usual
            return usual
        return None

    def _at_limit(self) -> bool:
        """Whether uvicorn would answer 503 (its ``limit_concurrency``)."""
        limit = self.limit_concurrency
        return limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit)

    def _head(self, frame: FrameFile, head: FrameHead, size: int, keep_alive: bool) -> bytes:
        """The whole head of ``frame``'s answer: made once per frame version and kind
        of answer while uvicorn's own lines (the date) stay the same."""
        first = self._default_lines()
        if not keep_alive:
            return b"".join((_OK, first, head.written(frame, size), _CLOSE, b"\r\n"))
        made = frame.written
        if made is not None and made[0] is head and made[1] == first:
            return made[2]
        whole = b"".join((_OK, first, head.written(frame, size), b"\r\n"))
        frame.written = (head, first, whole)
        return whole

    def _default_lines(self) -> bytes:
        """uvicorn's headers of every answer (``date``, ``server``), as it writes them."""
        defaults = self.server_state.default_headers
        if self._defaults[0] is not defaults:  # uvicorn makes a new list when the date changes
            lines = b"".join(b"%s: %s\r\n" % (name.lower(), value) for name, value in defaults)
            self._defaults = (defaults, lines)
        return self._defaults[1]

    def _send(self, head: bytes, opened: OpenedFile, keep_alive: bool, logged: _Logged) -> None:
        size = opened.size
        transport = self.transport
        try:
            rest, sent = start_file(self._socket_fd, self._socket_kind, head, opened.fd, size)
        except (BrokenPipeError, ConnectionResetError):
            transport.close()
            rest, sent = b"", size
        except OSError as error:  # the file is shorter than measured: the answer is cut
            self.logger.error("Exception sending %s", logged[2], exc_info=error)
            transport.close()
            rest, sent = b"", size
        if not rest and sent == size:
            answer = _SENT if keep_alive else _Answer(keep_alive, complete=True)
            self.cycle = answer  # type: ignore[assignment]  # uvicorn reads a few attributes
            self._answered(answer, logged, size)
            return
        answer = _Answer(keep_alive, complete=False)
        self.cycle = answer  # type: ignore[assignment]
        task = self.loop.create_task(self._send_rest(answer, rest, opened, sent, logged))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    async def _send_rest(
        self,
        answer: _Answer,
        rest: bytes,
        opened: OpenedFile,  # held open until sent
        sent: int,
        logged: _Logged,
    ) -> None:
        transport = self.transport
        try:
            await finish_file(transport, self._socket_fd, rest, opened.fd, sent, opened.size)
        except (BrokenPipeError, ConnectionResetError):
            transport.close()
        except OSError as error:
            self.logger.error("Exception sending %s", logged[2], exc_info=error)
            transport.close()
        finally:
            self._answered(answer, logged, opened.size)

    def _answered(self, answer: _Answer, logged: _Logged, size: int) -> None:
        """What follows an answer: the access log's line, then as uvicorn does after
        its own (the connection closed unless kept alive, the next pipelined
        request started or the keep-alive deadline set)."""
        answer.response_complete = True
        usual, frame, path, started = logged
        if self.access_log:  # uvicorn's own (off in dwa serve), as its cycle writes it
            scope = {"client": self.client, "method": "GET", "path": path, "headers": ()}
            client = get_client_addr(scope)  # type: ignore[arg-type]
            self.access_logger.info('%s - "GET %s HTTP/1.1" %d', client, path, 200)
        if usual.access_log.enabled:
            usual.access_log.record_opened(self._opening(frame, path), 200, size, started)
        if not answer.keep_alive and not self.transport.is_closing():
            self.transport.close()
        self.on_response_complete()

    def _opening(self, frame: FrameFile, path: str) -> str:
        """The start of the access log line of ``frame`` asked at ``path`` by this client."""
        client = self.client[0] if self.client else None
        logged = frame.logged
        if logged is None or logged[0] != client:
            logged = frame.logged = (client, line_opening(client, "GET", path))
        return logged[1]
