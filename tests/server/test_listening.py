from __future__ import annotations

import errno
import socket

import pytest

from dicomweb_archive.server import listening


def test_port_0_binds_a_free_port_and_names_it() -> None:
    with listening.bind("127.0.0.1", 0) as bound:
        port = bound.getsockname()[1]
        assert port != 0
        assert listening.origin(bound, "127.0.0.1") == f"http://127.0.0.1:{port}"
        assert listening.origin(bound, "::1") == f"http://[::1]:{port}"
        # Bound, not yet listening: nothing else binds the port meanwhile.
        with socket.socket() as other, pytest.raises(OSError) as taken:
            other.bind(("127.0.0.1", port))
        assert taken.value.errno == errno.EADDRINUSE


def test_a_port_taken_is_an_os_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError) as failed:
            listening.bind("127.0.0.1", taken.getsockname()[1])
    assert failed.value.errno == errno.EADDRINUSE


def test_a_socket_for_tcp_as_uvicorn_binds_it() -> None:
    """A TCP socket (asyncio sets TCP_NODELAY only on those), kept by worker processes."""
    with listening.bind("localhost", 0) as bound:
        assert bound.family == socket.AF_INET and bound.proto == socket.IPPROTO_TCP
        assert bound.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert bound.get_inheritable()
