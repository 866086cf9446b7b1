"""CPU time of ``dwa serve``'s connection per usual frame request, in process, no client.

    .venv/bin/python benchmarks/frame_cpu.py [--requests 20000] [--repeat 5] [--no-access-log]

What ``benchmarks/serve.py`` cannot isolate on a shared machine: the work of
the thread answering a frame, with nothing else in the measurement.  One
``dwa serve`` connection (the protocol ``dwa serve`` runs, on a real loopback
TCP socket whose other end a separate process reads and discards) is handed
the bytes of one request after the other, each a ``GET`` of one of the
archive's frames with OHIF's ``Accept`` (as ``wrk`` sends them), directly
through ``data_received``: no event loop turn, no ``recv``, no client in the
process.  The first request of the kind goes through the application (it
teaches the connection the head); then ``--requests`` are timed with the
thread's CPU times (``RUSAGE_THREAD``),
``--repeat`` times; the medians per request of user time (Python, the
parsers: what changes with our code) and system time (mostly ``sendfile``
into the socket, which blocks here when it is full) are printed.  The archive is the
one ``benchmarks/serve.py`` converts (``benchmarks/work/serve-archive``);
with ``--archive`` another.  ``--cprofile`` adds cProfile's table of the
timed runs (whose times it inflates).  Where other work shares the machine,
count instructions instead, which it does not change::

    valgrind --tool=callgrind --toggle-collect=functools_reduce \
        .venv/bin/python benchmarks/frame_cpu.py --requests 1000 --repeat 1

(the timed runs are the one call of ``functools.reduce``; the events counted
divided by the requests are the instructions of one, in the process's user
space).  The sources are whatever ``PYTHONPATH`` puts
first, so two trees compare by running this twice.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import logging
import os
import pstats
import resource
import socket
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ACCEPT = b"multipart/related; type=application/octet-stream; transfer-syntax=*"
#: Reads and discards what the connection sends (a process of its own: its CPU is not ours).
DRAIN = "import os, sys\nwhile os.read(int(sys.argv[1]), 1 << 20):\n    pass\n"


class Transport(asyncio.Transport):
    """The transport of a connection over ``sock``, writing as a blocking socket does."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock
        self.closing = False
        self.extra = {
            "socket": sock,
            "sockname": sock.getsockname(),
            "peername": sock.getpeername(),
            "sslcontext": None,
        }

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: Any) -> None:
        self.sock.sendall(data)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def frame_paths(archive: Path) -> list[str]:
    frames = sorted(archive.glob("studies/*/series/*/instances/*/frames/1"))
    if not frames:
        raise SystemExit(f"{archive}: no frames (run benchmarks/serve.py once to convert it)")
    return [f"/dicomweb/{f.relative_to(archive).as_posix()}" for f in frames]


async def measure(
    archive: Path, requests: int, repeat: int, profiler: cProfile.Profile | None = None
) -> list[tuple[float, float]]:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from dicomweb_archive.server.app import create_app
    from dicomweb_archive.server.directframes import DirectFramesProtocol

    config = Config(app=create_app(archive), http=DirectFramesProtocol, access_log=False)
    config.load()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        sock, _ = listener.accept()
    drain = subprocess.Popen(
        [sys.executable, "-c", DRAIN, str(client.fileno())], pass_fds=[client.fileno()]
    )
    client.close()
    try:
        protocol = DirectFramesProtocol(config=config, server_state=ServerState(), app_state={})
        protocol.connection_made(Transport(sock))
        asks = [
            b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: %s\r\n\r\n"
            % (path.encode(), ACCEPT)
            for path in frame_paths(archive)
        ]
        protocol.data_received(asks[0])  # through the application: the head is learned
        while protocol.cycle is None or not protocol.cycle.response_complete:
            await asyncio.sleep(0.01)
        for ask in asks:  # each frame's first answer learns its part and validators
            protocol.data_received(ask)
        run = [asks[n % len(asks)] for n in range(requests)]
        per_request = []
        for _ in range(repeat):
            before = resource.getrusage(resource.RUSAGE_THREAD)
            if profiler is not None:
                profiler.enable()
            # functools.reduce: what callgrind counts (--toggle-collect=functools_reduce).
            functools.reduce(lambda _, ask: protocol.data_received(ask), run, None)
            if profiler is not None:
                profiler.disable()
            after = resource.getrusage(resource.RUSAGE_THREAD)
            user = (after.ru_utime - before.ru_utime) / requests
            per_request.append((user, (after.ru_stime - before.ru_stime) / requests))
        if protocol.cycle.response_complete is not True or protocol.transport.is_closing():
            raise SystemExit("the connection did not answer every request")
        return per_request
    finally:
        sock.close()
        drain.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", type=Path, default=HERE / "work" / "serve-archive")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--cprofile", action="store_true", help="cProfile's table of the runs")
    args = parser.parse_args()
    profiler = cProfile.Profile() if args.cprofile else None
    if not args.no_access_log:
        from dicomweb_archive.server.middleware import enable_access_log

        enable_access_log()
        handler = logging.getLogger("dicomweb_archive.access").handlers[0]
        handler.stream = open(os.devnull, "w")  # type: ignore[attr-defined]  # noqa: SIM115
    import uvloop

    per_request = uvloop.run(measure(args.archive, args.requests, args.repeat, profiler))
    import dicomweb_archive

    users = ", ".join(f"{u * 1e6:.1f}" for u, _ in per_request)
    print(
        f"{Path(dicomweb_archive.__file__).parent.parent}: CPU per frame "
        f"{statistics.median(u for u, _ in per_request) * 1e6:.1f} us user (runs: {users}), "
        f"{statistics.median(s for _, s in per_request) * 1e6:.1f} us system; access log "
        f"{'off' if args.no_access_log else 'on'}"
    )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)


if __name__ == "__main__":
    main()
