"""Loopback ports for the servers the tests start, with no race over them.

A port found free, then given to a program, is a race: between the probe and
the program's own bind, any other process of the test run (another server, a
client's ephemeral port) may take it, and the program fails ("address already
in use"), or a client reaches another program.  So, best first:

* a program that takes port 0 binds a free port itself and says which
  (``dwa serve``, ``dwa listen``, ``dask scheduler``; uvicorn and pynetdicom in
  the test's own process): :func:`announced` reads it from what it says;
* a program that must be told its port (``moto_server``, nginx, DCMTK's
  storescp): :func:`on_a_free_port` starts it again on another port, a few
  times, when the one it was given was taken first (:class:`PortTaken`, which
  :func:`wait_until_listening` raises);
* a port another program must know before the one to listen on it starts (a
  Move Destination in ``dwa listen``'s peers file, which movescu listens on
  later): :func:`reserved_port` holds it meanwhile.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import IO, TypeVar

import psutil

#: Ports tried for a program that must be told its port, before giving up.
PORT_ATTEMPTS = 5
#: How long a started server may take to listen (or say where it listens).
#: Only one that never comes up waits this long; one that exits fails at once.
START_DEADLINE = 120.0
#: How often a starting server is looked at.
POLL_INTERVAL = 0.05

T = TypeVar("T")


class PortTaken(Exception):
    """The port a program was given was taken before it could bind it."""


def unused_port() -> int:
    """A loopback port nothing is bound to now.

    Another process may take it before the program it is given binds it: only
    for :func:`on_a_free_port`, which allows for that.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def written(stream: IO[bytes]) -> str:
    """What a program has written to ``stream``, a file it shares (write-only
    too): opened anew, not to move the offset the program writes at."""
    stream.flush()
    with open(f"/proc/self/fd/{stream.fileno()}", "rb") as reading:
        return reading.read().decode(errors="replace")


def says_port_taken(said: str) -> bool:
    """Whether a program's output says it could not bind its port: Python's and
    werkzeug's "[Errno 98] Address already in use", nginx's "bind() to … failed
    (98: Address already in use)", DCMTK's "TCP Initialization Error: Address
    already in use"."""
    return "address already in use" in said.lower()


@contextlib.contextmanager
def on_a_free_port(
    start: Callable[[int], AbstractContextManager[T]], attempts: int = PORT_ATTEMPTS
) -> Iterator[T]:
    """What ``start(port)`` yields, started on a free port.

    ``start`` starts the program on ``port``, waits until it serves, and raises
    :class:`PortTaken` if the port was taken first (its own clean-up done): it
    is started again on another port, ``attempts`` times at most.  Any other
    failure is the test's.
    """
    taken: list[str] = []
    for _ in range(attempts):
        port = unused_port()
        with contextlib.ExitStack() as stack:
            try:
                started = stack.enter_context(start(port))
            except PortTaken as exc:
                taken.append(f"port {port}: {exc}")
                continue
            yield started
            return
    raise AssertionError(
        f"{attempts} ports taken before the program bound them:\n" + "\n".join(taken)
    )


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` (or a child of it: nginx's workers) listens on TCP ``port``."""
    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            for connection in process.net_connections(kind="tcp"):
                if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
                    return True
    return False


def wait_until_listening(
    process: subprocess.Popen[bytes],
    port: int,
    said: Callable[[], str],
    deadline: float = START_DEADLINE,
) -> None:
    """Until ``process`` listens on ``port`` itself: another program that listens
    there answers a client just as well, so answers prove nothing.

    :class:`PortTaken` if it says it could not bind the port (exited, or still
    trying, as nginx does for seconds); an :class:`AssertionError` with what it
    said if it exits otherwise, or does not listen within ``deadline`` seconds.
    """
    end = time.monotonic() + deadline
    while not listens(process.pid, port):
        text = said()
        if says_port_taken(text):
            raise PortTaken(text[-2000:])
        assert process.poll() is None, f"exited ({process.returncode}) before listening: {text}"
        assert time.monotonic() < end, f"did not listen on port {port} within {deadline} s: {text}"
        time.sleep(POLL_INTERVAL)


def announced(
    pattern: str,
    process: subprocess.Popen[bytes],
    said: Callable[[], str],
    deadline: float = START_DEADLINE,
) -> re.Match[str]:
    """The first match of ``pattern`` (multiline) in what ``process`` says, once
    said: where a program given port 0 says it listens."""
    end = time.monotonic() + deadline
    while (found := re.search(pattern, said(), re.MULTILINE)) is None:
        assert process.poll() is None, f"exited ({process.returncode}): {said()}"
        assert time.monotonic() < end, f"{pattern!r} not said within {deadline} s: {said()}"
        time.sleep(POLL_INTERVAL)
    return found


@contextlib.contextmanager
def reserved_port() -> Iterator[int]:
    """A loopback port held (bound, not listening) until the block ends.

    Meanwhile only a program told this very port, and binding with
    ``SO_REUSEADDR`` as servers do (DCMTK, nginx, uvicorn, werkzeug), can
    listen on it: no other bind takes it, nor does the kernel choose it for a
    client or a port-0 server.  Until then a connection to it is refused.
    """
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])
