"""Stored files handed to the server to send: the ASGI ``http.response.pathsend`` extension.

A server that offers the extension (Granian, and ``dwa serve``'s own
connection) sends a file named by its path itself: the body never passes
through the application.  The path given is the descriptor the answer
measured, ``/proc/self/fd/N``, not the file's name in the archive: a writer
replacing the file meanwhile (a STOW-RS of the same instance) must not change
an answer whose length and ``ETag`` are already sent.  A server may open that
path after ``send`` returns, so the descriptor is held open a while longer
(:data:`HOLD_SECONDS`), unless the server says it has sent the file by then
(``dwa serve``'s connection, :mod:`.sendfile`).
"""

from __future__ import annotations

import asyncio
import os
from typing import Final

from starlette.types import Scope, Send

from dicomweb_archive.store.slices import OpenedFile

#: The ASGI extension's name in ``scope["extensions"]``.
PATHSEND: Final = "http.response.pathsend"
#: Seconds a sent descriptor stays open for the server to open it again.
HOLD_SECONDS: Final = 2.0
#: The folder naming this process's open descriptors.
DESCRIPTORS: Final = "/proc/self/fd"
#: The key of the extension's entry by which a server says it sends the file
#: before ``send`` returns.
SENT_ON_RETURN: Final = "sent_on_return"
_BY_DESCRIPTOR: Final = os.path.isdir(DESCRIPTORS)


def sends_paths(scope: Scope) -> bool:
    """Whether the server sends files by path (and a descriptor can be named by one)."""
    return _BY_DESCRIPTOR and PATHSEND in (scope.get("extensions") or {})


async def send_path(opened: OpenedFile, scope: Scope, send: Send) -> None:
    """Send the whole of ``opened`` as the response body."""
    await send({"type": PATHSEND, "path": f"{DESCRIPTORS}/{opened.fd}"})
    if not scope["extensions"][PATHSEND].get(SENT_ON_RETURN):
        asyncio.get_running_loop().call_later(HOLD_SECONDS, _release, opened)


def _release(opened: OpenedFile) -> None:
    """Drop the last reference the timer held (the descriptor closes with it)."""
