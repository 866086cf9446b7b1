"""Stored files sent by the kernel: ASGI's ``http.response.pathsend`` on uvicorn's connection.

uvicorn copies every body through Python into the socket; a stored frame of
half a megabyte costs more there than everything else the request does.  The
connection of ``dwa serve`` (:mod:`.connection`) offers the ASGI extension
``http.response.pathsend`` on plain-TCP connections and answers it with
``sendfile(2)``, as nginx does: the bytes go from the page cache to the
socket without entering the process.

:class:`SendfileCycle` is uvicorn's request-response cycle with that one
message added; everything else (the status line and headers, keep-alive,
HEAD, disconnects) stays uvicorn's.  The file is sent from the event loop;
a socket that takes no more waits for the client, as any body does.
"""

from __future__ import annotations

import asyncio
import errno
import os
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from dicomweb_archive.server.pathsend import PATHSEND

#: Most bytes one ``sendfile`` call is asked for (the socket takes what fits).
_STEP: Final = 1 << 30
_OPEN_FLAGS: Final = os.O_RDONLY | os.O_CLOEXEC


class SendfileCycle(RequestResponseCycle):
    """uvicorn's request-response cycle, answering ``http.response.pathsend`` by ``sendfile``."""

    async def send(self, message: Any) -> None:
        if message["type"] != PATHSEND:
            await super().send(message)
            return
        if self.disconnected:
            return
        if not self.response_started or self.response_complete or self.chunked_encoding:
            raise RuntimeError(f"{PATHSEND} without a started response of known length")
        fd = os.open(message["path"], _OPEN_FLAGS)
        try:
            size = os.fstat(fd).st_size
            if self.scope["method"] != "HEAD":
                if size != self.expected_content_length:
                    raise RuntimeError(f"{PATHSEND}: {size} bytes, Content-Length says otherwise")
                await self._send_file(fd, size)
                self.expected_content_length = 0
        finally:
            os.close(fd)
        await super().send({"type": "http.response.body", "body": b""})

    async def _send_file(self, fd: int, size: int) -> None:
        # The head goes first: it may still wait in the transport's buffer.
        while self.transport.get_write_buffer_size() and not self.transport.is_closing():
            await asyncio.sleep(0.001)
        sock = self.transport.get_extra_info("socket")
        if sock is None or self.transport.is_closing():
            self.disconnected = True
            return
        # A duplicate of the socket, ours alone: the event loop watches it for
        # room to write (it refuses a watcher on the transport's own), and no
        # close of the connection meanwhile makes its number name another file.
        out = os.dup(sock.fileno())
        try:
            await _send(out, fd, size, self.transport)
        except (BrokenPipeError, ConnectionResetError):
            self.transport.close()
        finally:
            os.close(out)
        if self.transport.is_closing():
            self.disconnected = True


async def _send(out: int, fd: int, size: int, transport: asyncio.Transport) -> None:
    """The ``size`` bytes of ``fd`` into the socket ``out``, waiting for room as needed."""
    loop = asyncio.get_running_loop()
    offset = 0
    while offset < size and not transport.is_closing():
        try:
            sent = os.sendfile(out, fd, offset, min(size - offset, _STEP))
        except BlockingIOError:
            await _writable(loop, out)
            continue
        if not sent:
            raise OSError(errno.EIO, "the file ended before its announced length")
        offset += sent


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
