"""The ports servers are started on (tests/ports.py), with DCMTK's storescp: a
real program that must be told its port."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from tests import ports
from tests.integration.conftest import TEMP_PATHS, run_nginx

HOLD = (
    "import socket, sys\n"
    "s = socket.socket()\n"
    "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "s.listen()\n"
    "print(s.getsockname()[1], flush=True)\n"
    "sys.stdin.read()\n"
)


@contextlib.contextmanager
def held_by_another_process(port: int = 0) -> Iterator[tuple[int, int]]:
    """``port`` (0: a free one) listened on by another process until the block ends;
    yields the port and that process's id."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        yield int(holder.stdout.readline()), holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def storescp(work: Path, *options: str) -> Callable[[int], AbstractContextManager[tuple[int, int]]]:
    """How to start storescp on a port, as :func:`ports.on_a_free_port` takes it;
    the started one yields its port and process id."""

    @contextlib.contextmanager
    def start(port: int) -> Iterator[tuple[int, int]]:
        log = work / f"storescp-{port}.log"
        with open(log, "wb") as output:
            process = subprocess.Popen(
                ["storescp", *options, "-od", str(work), str(port)],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            ports.wait_until_listening(process, port, log.read_text)
            yield port, process.pid
        finally:
            process.terminate()
            process.wait(timeout=30)

    return start


def test_a_probed_port_taken_meanwhile_fails_the_program_given_it(tmp_path: Path) -> None:
    """The race, shown: probe a free port, another process takes it, the program
    given it cannot listen; the other process answers in its place meanwhile."""
    port = ports.unused_port()
    with held_by_another_process(port):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # answered
        with (
            pytest.raises(ports.PortTaken, match="Address already in use"),
            storescp(tmp_path)(port),
        ):
            pass


def test_on_a_free_port_starts_again_where_the_port_was_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with held_by_another_process() as (taken, _):
        given = itertools.chain([taken], iter(ports.unused_port, None))
        monkeypatch.setattr(ports, "unused_port", lambda: next(given))
        with ports.on_a_free_port(storescp(tmp_path)) as (port, pid):
            assert port != taken
            assert ports.listens(pid, port)
    assert (tmp_path / f"storescp-{taken}.log").exists()


def test_on_a_free_port_gives_up_after_its_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with held_by_another_process() as (taken, _):
        monkeypatch.setattr(ports, "unused_port", lambda: taken)
        with (
            pytest.raises(AssertionError, match="2 ports taken"),
            ports.on_a_free_port(storescp(tmp_path), attempts=2),
        ):
            pass


def test_a_failure_not_of_the_port_is_not_tried_again(tmp_path: Path) -> None:
    tried: list[int] = []

    def start(port: int) -> AbstractContextManager[tuple[int, int]]:
        tried.append(port)
        return storescp(tmp_path, "--no-such-option")(port)

    with pytest.raises(AssertionError, match="exited"), ports.on_a_free_port(start):
        pass
    assert len(tried) == 1


def test_a_reserved_port_is_for_the_program_told_it(tmp_path: Path) -> None:
    """Refused until the program listens; no other bind can take it meanwhile."""
    with ports.reserved_port() as port:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
        with socket.socket() as other, pytest.raises(OSError, match="in use"):
            other.bind(("127.0.0.1", port))
        with storescp(tmp_path)(port) as (_, pid):
            assert ports.listens(pid, port)
            socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_listens_is_of_the_process_and_its_children() -> None:
    """Whoever answers on a port, only the process listening there (or its parent) listens."""
    with held_by_another_process() as (port, pid):
        assert ports.listens(pid, port)
        assert ports.listens(os.getpid(), port)  # a child of this one
        assert not ports.listens(pid, port + 1 if port < 65535 else port - 1)
    with held_by_another_process() as (_, pid):
        assert not ports.listens(pid, port)


def _nginx_conf(prefix: Path) -> Callable[[int], str]:
    """A configuration of nginx answering 204 on ``port``, all its files in ``prefix``."""
    temp = "".join(f"    {name}_temp_path {prefix}/temp/{name};\n" for name in TEMP_PATHS)
    user = "user root;\n" if os.geteuid() == 0 else ""

    def conf(port: int) -> str:
        return (
            f"{user}worker_processes 1;\npid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/logs/error.log info;\nevents {{ worker_connections 64; }}\n"
            f"http {{\n    access_log off;\n{temp}"
            f"    server {{ listen 127.0.0.1:{port}; location / {{ return 204; }} }}\n}}\n"
        )

    return conf


def test_nginx_given_a_port_taken_meanwhile_starts_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nginx keeps trying a taken port for seconds while the other process
    answers there: it is stopped at its first complaint, and started on another."""
    with held_by_another_process() as (taken, _):
        given = itertools.chain([taken], iter(ports.unused_port, None))
        monkeypatch.setattr(ports, "unused_port", lambda: next(given))
        conf, asked = _nginx_conf(tmp_path), list[int]()

        def recorded(port: int) -> str:
            asked.append(port)
            return conf(port)

        with run_nginx(tmp_path, recorded) as port:
            assert asked == [taken, port]
            assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 204
            # What this start said, not the one before.
            assert not ports.says_port_taken((tmp_path / "nginx.out").read_text())


@pytest.mark.parametrize("mode", ["wb", "ab", "w+b"])
def test_written_is_read_without_moving_the_writer(tmp_path: Path, mode: str) -> None:
    """A log the program writes through a descriptor it shares with the test."""
    with open(tmp_path / "said.log", mode) as stream:
        stream.write(b"first\n")
        assert ports.written(stream) == "first\n"
        stream.write(b"second\n")
        assert ports.written(stream) == "first\nsecond\n"
