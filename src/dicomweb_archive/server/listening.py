"""The socket ``dwa serve`` listens on, bound before uvicorn runs.

Bound here rather than by uvicorn, so that the address printed is the one
served: port 0 takes any free port, and the port the kernel chose is known
(and printed) before the first request.  uvicorn then serves the socket as
given, in this process or in its ``--workers`` processes, which share it.
"""

from __future__ import annotations

import contextlib
import inspect
import socket
from typing import Any

import uvicorn


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: any free port), not yet listening.

    Raises :class:`OSError` when the address cannot be bound (taken, not ours).
    """
    # As uvicorn does: IPv6 for an IPv6 address, IPv4 otherwise (a name too).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, family, socket.SOCK_STREAM, socket.IPPROTO_TCP, socket.AI_PASSIVE
    )[0]
    bound = socket.socket(family, kind, proto)
    # As uvicorn does: a restart need not wait for the old connections' TIME_WAIT.
    bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        bound.bind(address)
    except OSError:
        bound.close()
        raise
    bound.set_inheritable(True)
    return bound


def origin(bound: socket.socket, host: str) -> str:
    """``http://host:port`` of the bound socket (the port it has, not the one asked for)."""
    port = bound.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def run(config: uvicorn.Config, bound: socket.socket) -> bool:
    """Serve ``bound`` with uvicorn (``config.workers`` processes) until stopped;
    whether the server started (one process: it may fail before it serves)."""
    # uvicorn raises the interrupt it caught (Ctrl-C) again once it has stopped.
    if config.workers > 1:
        with contextlib.suppress(KeyboardInterrupt):
            _supervise(config, bound)
        return True
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[bound])
    return server.started


def _supervise(config: uvicorn.Config, bound: socket.socket) -> None:
    """uvicorn's supervisor of worker processes, each serving ``bound``."""
    from uvicorn.supervisors import Multiprocess

    # uvicorn 0.52 dropped the ``target`` its supervisor took until then.
    supervisor: Any = Multiprocess
    if "target" in inspect.signature(Multiprocess).parameters:
        supervisor(config, target=uvicorn.Server(config).run, sockets=[bound]).run()
    else:
        supervisor(config, sockets=[bound]).run()
