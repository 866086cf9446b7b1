"""The HTTP/1.1 connection ``dwa serve`` runs: uvicorn's httptools protocol, bounded.

uvicorn (0.5x) with httptools has no limit on the size of a request head and
no deadline for it: a client could send a 16 MB ``Accept`` header, which the
parser gathers piece by piece on the event loop while every other client
waits, or open connections and send nothing, or half a request, and keep them
forever.  (``h11_max_incomplete_event_size`` only applies to the h11 parser.)
This protocol adds three bounds:

- a request head (request line and headers) larger than :data:`MAX_HEAD_BYTES`
  is answered 431 and the connection closed, before the parser sees the excess;
- a head not complete :data:`HEAD_TIMEOUT` seconds after the connection opened
  or the request began is answered 408 and the connection closed;
- a request body that receives nothing for :data:`BODY_IDLE_TIMEOUT` seconds
  (while the application is ready for more) has its connection closed, which
  the application sees as a client that went away.

Idle keep-alive connections are closed after uvicorn's ``timeout_keep_alive``.
The head's and the idle connection's deadlines are each kept by one timer per
connection that, when it fires, looks at when the head began or the connection
went idle, and waits again if that was later: a timer set and cancelled costs
a few microseconds, which per request was a noticeable part of a stored
frame's whole cost (a few per cent).

On plain-TCP connections it also offers the ASGI ``http.response.pathsend``
extension, answered by ``sendfile(2)`` (see :mod:`.sendfile`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Final

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from dicomweb_archive.errors import (
    DicomwebArchiveError,
    RequestHeaderFieldsTooLargeError,
    RequestTimeoutError,
)
from dicomweb_archive.server.pathsend import PATHSEND
from dicomweb_archive.server.sendfile import OFFER, SendfileCycle

#: Largest request line plus headers, in bytes (nginx allows 4 lines of 8 KiB).
MAX_HEAD_BYTES: Final = 64 * 1024
#: Seconds a client has to send a whole request head.
HEAD_TIMEOUT: Final = 10.0
#: Seconds a request body may go without receiving anything.
BODY_IDLE_TIMEOUT: Final = 30.0
#: The request headers that announce a body (RFC 9112 6.3).
_BODY_HEADERS: Final = frozenset({b"content-length", b"transfer-encoding"})


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded head size and head and body deadlines."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._head_tail = b""
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        #: When the head in progress began (None between requests).
        self._head_since: float | None = None
        #: When the connection became idle after an answer (None when not idle).
        self._idle_since: float | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._sends_files = False
        self._socket_kind = SendfileCycle.socket_kind
        self._socket_fd = -1
        #: The 400 of a malformed request, held until the requests before it
        #: on the connection are answered.
        self._malformed: str | None = None

    # -- the connection ---------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # TLS encrypts in the process: no file goes to such a socket untouched.
        self._sends_files = transport.get_extra_info("sslcontext") is None and hasattr(
            os, "sendfile"
        )
        sock = transport.get_extra_info("socket")
        if sock is not None:  # asked once: each answer's file goes to this socket
            self._socket_kind = (int(sock.family), int(sock.type), sock.proto)
            self._socket_fd = sock.fileno()
        self._head_since = self.loop.time()
        self._head_timer = self._start_timer(HEAD_TIMEOUT, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_timer = self._stop_timer(self._head_timer)
        self._body_timer = self._stop_timer(self._body_timer)
        self._idle_timer = self._stop_timer(self._idle_timer)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head and not self._head_fits(data):
            self._refuse(
                RequestHeaderFieldsTooLargeError(f"the request head exceeds {MAX_HEAD_BYTES} bytes")
            )
            return
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = self._start_timer(BODY_IDLE_TIMEOUT, self._body_timed_out)
        super().data_received(data)
        if self._in_head:
            self._head_bytes += len(data)
            self._head_tail = (self._head_tail + data)[-3:]

    def send_400_response(self, msg: str) -> None:
        # A malformed request behind others still being answered: their answers
        # go first, in order, then this one, which closes the connection
        # (uvicorn's closed it at once, and their answers failed to be written).
        if self._answering():
            self._malformed = msg
            return
        super().send_400_response(msg)

    def _answering(self) -> bool:
        """Whether a request of the connection is being answered or waits to be."""
        return bool(self.pipeline) or (self.cycle is not None and not self.cycle.response_complete)

    def _head_fits(self, data: bytes) -> bool:
        """Whether the head still fits, or ends within the bytes it may still have."""
        room = MAX_HEAD_BYTES - self._head_bytes
        if len(data) <= room:
            return True
        window = self._head_tail + data[: max(room, 0)]
        return b"\r\n\r\n" in window or b"\n\n" in window

    # -- parser callbacks -------------------------------------------------------

    def on_message_begin(self) -> None:
        # Not idle any more, even when the request came in the data of an answer
        # given in the parser's callback (:mod:`.directframes`).
        self._unset_keepalive_if_required()
        super().on_message_begin()
        if self._head_since is None:
            self._head_since = self.loop.time()
        if self._head_timer is None:
            self._head_timer = self._start_timer(HEAD_TIMEOUT, self._head_timed_out)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_since = None  # its timer stays: the next head's, or it finds none
        if self._sends_files and self._answered_here():  # never a request with a body
            return
        if any(name in _BODY_HEADERS for name, _ in self.headers):  # else none is coming
            self._body_timer = self._start_timer(BODY_IDLE_TIMEOUT, self._body_timed_out)
        if self._sends_files:
            self.scope["extensions"] = {**self.scope.get("extensions", {}), PATHSEND: OFFER}
        super().on_headers_complete()
        if self._sends_files and type(self.cycle) is RequestResponseCycle:
            # The cycle just made, before its task first runs: it answers pathsend too.
            cycle: Any = self.cycle
            cycle.__class__ = SendfileCycle
            cycle.socket_kind = self._socket_kind

    def _answered_here(self) -> bool:
        """Whether the connection answered the request whose head just ended itself
        (a subclass may: :mod:`.directframes`, never a request with a body); else
        uvicorn runs the application."""
        return False

    def on_message_complete(self) -> None:
        self._body_timer = self._stop_timer(self._body_timer)
        # Whatever comes next on this connection is the head of another request.
        self._in_head = True
        self._head_bytes = 0
        self._head_tail = b""
        super().on_message_complete()

    # -- deadlines --------------------------------------------------------------

    def on_response_complete(self) -> None:
        # uvicorn's (the count, reading resumed, the next pipelined request
        # started), but the keep-alive deadline is a time read later (_idle_timed_out).
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        if self._malformed is not None:
            super().send_400_response(self._malformed)
            return
        self._idle_since = self.loop.time()
        if self._idle_timer is None:
            self._idle_timer = self._start_timer(self.timeout_keep_alive, self._idle_timed_out)

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None
        super()._unset_keepalive_if_required()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        rest = self._rest(self._head_since, HEAD_TIMEOUT)
        if rest is None:
            return  # no head in progress: the next one sets the timer again
        if rest > 0:  # a later head's
            self._head_timer = self._start_timer(rest, self._head_timed_out)
            return
        self._refuse(
            RequestTimeoutError(f"the request head did not arrive within {HEAD_TIMEOUT:g} s")
        )

    def _idle_timed_out(self) -> None:
        self._idle_timer = None
        rest = self._rest(self._idle_since, self.timeout_keep_alive)
        if rest is not None and rest > 0:  # idle again since
            self._idle_timer = self._start_timer(rest, self._idle_timed_out)
        elif rest is not None:
            self.timeout_keep_alive_handler()

    def _rest(self, since: float | None, seconds: float) -> float | None:
        """Seconds left of a deadline ``seconds`` after ``since`` (None: none running)."""
        return None if since is None else since + seconds - self.loop.time()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # the application is not reading: not the client's delay
            self._body_timer = self._start_timer(BODY_IDLE_TIMEOUT, self._body_timed_out)
            return
        self.transport.close()

    def _start_timer(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return self.loop.call_later(delay, callback)

    @staticmethod
    def _stop_timer(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()

    def _refuse(self, error: DicomwebArchiveError) -> None:
        """Answer ``error`` as the application's error handler would, then close."""
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request, behind a response still being sent: no
            # answer can be written between them.
            self.transport.close()
            return
        body = orjson.dumps(error.to_json())
        status = HTTPStatus(error.http_status)
        head = (
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n"
            % (status.value, status.phrase.encode(), len(body))
        )
        self.transport.write(head + body)
        self.transport.close()
