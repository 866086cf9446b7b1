"""Stored files sent by the kernel: ASGI's ``http.response.pathsend`` on uvicorn's connection.

uvicorn copies every body through Python into the socket; a stored frame of
half a megabyte costs more there than everything else the request does.  The
connection of ``dwa serve`` (:mod:`.connection`) offers the ASGI extension
``http.response.pathsend`` on plain-TCP connections and answers it with
``sendfile(2)``, as nginx does: the bytes go from the page cache to the
socket without entering the process.

:class:`SendfileCycle` is uvicorn's request-response cycle with that one
message added; everything else (the status line and headers, keep-alive,
HEAD, disconnects) stays uvicorn's.  Two things make a sent file cheap:

- the head of an answer waits for its body's first message, and goes out in
  the same TCP segments as a file (``MSG_MORE``; nginx's ``tcp_nopush``): the
  client is woken once, not once for the head and again for the body;
- a path naming a descriptor of this process (``/proc/self/fd/N``, what
  :func:`~dicomweb_archive.server.pathsend.send_path` sends) is that
  descriptor, not opened again: the file is sent before ``send`` returns,
  while the application still holds it (:data:`OFFER`).

The file is sent from the event loop; a socket that takes no more waits for
the client, as any body does.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import os
import socket
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from dicomweb_archive.server.pathsend import DESCRIPTORS, PATHSEND, SENT_ON_RETURN

#: What the connection offers as ``scope["extensions"]["http.response.pathsend"]``.
OFFER: Final[dict[object, object]] = {SENT_ON_RETURN: True}
#: Most bytes one ``sendfile`` call is asked for (the socket takes what fits).
_STEP: Final = 1 << 30
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_CLOEXEC
_OWN_DESCRIPTOR: Final = DESCRIPTORS + "/"
_MORE: Final = getattr(socket, "MSG_MORE", 0)


class _HeadCatcher:
    """Stands for the transport while uvicorn writes a head: keeps it instead."""

    __slots__ = ("head", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.head = b""

    def write(self, data: bytes) -> None:
        self.head += data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class SendfileCycle(RequestResponseCycle):
    """uvicorn's request-response cycle, answering ``http.response.pathsend`` by ``sendfile``."""

    #: The answer's head, made by uvicorn, held until the body's first message.
    #: (Class defaults: the cycle is made by uvicorn, then given this class.)
    held_head = b""
    #: The connection's socket family, type and protocol (the protocol sets them).
    socket_kind: tuple[int, int, int] = (socket.AF_INET, socket.SOCK_STREAM, 0)

    async def send(self, message: Any) -> None:
        if not self.disconnected and self.transport.is_closing():
            # Closed under the answer (uvicorn learns it a moment later): as
            # uvicorn does for a client gone, nothing more is written.
            self.disconnected = True
        kind = message["type"]
        if kind == "http.response.start" and not self.response_started:
            catcher = _HeadCatcher(self.transport)
            self.transport = catcher  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = catcher.transport
            self.held_head = catcher.head
            return
        head, self.held_head = self.held_head, b""
        if kind != PATHSEND:
            if head and not self.disconnected:
                self.transport.write(head)
            await super().send(message)
            return
        if self.disconnected:
            return
        if not self.response_started or self.response_complete or self.chunked_encoding:
            raise RuntimeError(f"{PATHSEND} without a started response of known length")
        await self._send_path(message["path"], head)
        await super().send({"type": "http.response.body", "body": b""})

    async def _send_path(self, path: str, head: bytes) -> None:
        own = path.startswith(_OWN_DESCRIPTOR)
        fd = int(path[len(_OWN_DESCRIPTOR) :]) if own else os.open(path, _OPEN_FLAGS)
        try:
            size = os.fstat(fd).st_size
            if self.scope["method"] == "HEAD":
                self.transport.write(head)
                return
            if size != self.expected_content_length:
                raise RuntimeError(f"{PATHSEND}: {size} bytes, Content-Length says otherwise")
            await self._send_file(fd, size, head)
            self.expected_content_length = 0
        finally:
            if not own:
                os.close(fd)

    async def _send_file(self, fd: int, size: int, head: bytes) -> None:
        transport = self.transport
        await _drained(transport)  # what an earlier answer left goes first
        sock = transport.get_extra_info("socket")
        if sock is None or transport.is_closing():
            self.disconnected = True
            return
        try:
            # Up to the first wait for room, the socket's number names this
            # connection (nothing can close it meanwhile).
            rest, sent = start_file(sock.fileno(), self.socket_kind, head, fd, size)
            if rest or sent < size:
                await finish_file(transport, sock.fileno(), rest, fd, sent, size)
        except (BrokenPipeError, ConnectionResetError):
            transport.close()
        if transport.is_closing():
            self.disconnected = True


def start_file(
    out: int, kind: tuple[int, int, int], head: bytes, fd: int, size: int
) -> tuple[bytes, int]:
    """Send ``head``, then the ``size`` bytes of ``fd``, as far as the socket ``out`` (of
    ``kind``) takes them now, with no wait: the part of the head left, the file's bytes sent."""
    rest = _send_head(out, kind, head)
    return rest, 0 if rest else _sendfile(out, fd, 0, size)


async def finish_file(
    transport: asyncio.Transport, out: int, rest: bytes, fd: int, sent: int, size: int
) -> None:
    """What :func:`start_file` left (``rest`` of the head, the file from ``sent``), waiting
    for room; the socket ``out`` is the transport's, still open when called."""
    if rest:  # the socket is full: the transport sends the rest when it can
        transport.write(rest)
        await _drained(transport)
        sent = 0 if transport.is_closing() else _sendfile(out, fd, 0, size)
    if sent < size and not transport.is_closing():
        # A duplicate of the socket, ours alone: the event loop watches it for
        # room to write (it refuses a watcher on the transport's own), and no
        # close of the connection meanwhile makes its number name another file.
        duplicate = os.dup(out)
        try:
            await _send(duplicate, fd, sent, size, transport)
        finally:
            os.close(duplicate)


async def _drained(transport: asyncio.Transport) -> None:
    """Until the transport's own buffer is empty (its bytes come before a file's)."""
    while transport.get_write_buffer_size() and not transport.is_closing():
        await asyncio.sleep(0.001)


def _send_head(fd: int, kind: tuple[int, int, int], head: bytes) -> bytes:
    """Send what the socket ``fd`` (of ``kind``: family, type, protocol) takes of
    ``head`` now; the rest.

    Over TCP with ``MSG_MORE``: the head leaves with the file's first bytes,
    not in a segment of its own.
    """
    more = _MORE if kind[0] in (socket.AF_INET, socket.AF_INET6) else 0
    # The C socket object: the Python wrapper's own set-up costs twice as much.
    own = _socket.socket(*kind, fileno=fd)
    try:
        while head:
            head = head[own.send(head, more) :]
    except BlockingIOError:
        pass
    finally:
        own.detach()  # the transport's, not ours to close
    return head


def _sendfile(out: int, fd: int, offset: int, size: int) -> int:
    """The bytes of ``fd`` from ``offset`` that the socket ``out`` takes now; where they end."""
    while offset < size:
        try:
            sent = os.sendfile(out, fd, offset, min(size - offset, _STEP))
        except BlockingIOError:
            break
        if not sent:
            raise OSError(errno.EIO, "the file ended before its announced length")
        offset += sent
    return offset


async def _send(out: int, fd: int, offset: int, size: int, transport: asyncio.Transport) -> None:
    """The bytes of ``fd`` from ``offset`` to ``size`` into the socket ``out``, waiting for room."""
    loop = asyncio.get_running_loop()
    while offset < size and not transport.is_closing():
        await _writable(loop, out)
        offset = _sendfile(out, fd, offset, size)


async def _writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Until ``fd`` has room to write."""
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)
