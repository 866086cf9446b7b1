from __future__ import annotations

import errno
import socket

import pytest
import uvicorn

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


class _Supervisor:
    """Stands for uvicorn's supervisor of worker processes: records what it is given."""

    given: list[tuple[uvicorn.Config, object, list[socket.socket]]]
    runs: list[_Supervisor]

    def run(self) -> None:
        self.runs.append(self)


class _Since052(_Supervisor):
    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        self.given.append((config, None, sockets))


class _Before052(_Supervisor):
    def __init__(
        self, config: uvicorn.Config, target: object, sockets: list[socket.socket]
    ) -> None:
        self.given.append((config, target, sockets))


@pytest.mark.parametrize("supervisor", [_Since052, _Before052])
def test_workers_share_the_bound_socket_with_either_supervisor(
    monkeypatch: pytest.MonkeyPatch, supervisor: type[_Supervisor]
) -> None:
    """uvicorn 0.52 dropped the ``target`` its supervisor took; the range we allow has both."""
    supervisor.given, supervisor.runs = [], []
    monkeypatch.setattr("uvicorn.supervisors.Multiprocess", supervisor)
    config = uvicorn.Config("dicomweb_archive.server.app:app_from_environment", workers=2)
    with listening.bind("127.0.0.1", 0) as bound:
        assert listening.run(config, bound)
    [(given, target, sockets)] = supervisor.given
    assert given is config and sockets == [bound]
    assert (target is None) == (supervisor is _Since052)
    assert len(supervisor.runs) == 1
