"""A generated retrieve's HEAD and 304 against its full GET, from a real ``dwa serve``.

    .venv/bin/python benchmarks/validators.py [--slices 300] [--repeat 5]

Converts the synthetic CT series of ``benchmarks/convert.py`` (300 slices of
512x512 by default) into a folder archive and packs it into a second archive
(``studies/{st}.zip``), starts ``dwa serve`` on each (as shipped), and, for
the study as ``application/zip`` and as ``multipart/related;
type="application/dicom"`` (the default Explicit VR Little Endian), measures in
``--repeat`` interleaved rounds: the full ``GET`` (body read and dropped), a
``HEAD``, and a ``GET`` with ``If-None-Match`` of the ``ETag`` (304).  Reported:
the medians of the client's wall time and of the server's CPU time per
request, and GET / HEAD and GET / 304 ratios (the medians' ratio).

Before timing, each answer is checked: the GET is 200 with its ``ETag``, the
HEAD 200 with the same ``ETag`` and no body, the conditional GET 304 with no
body; every GET of a round has the first GET's size and ``ETag``.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import serve
from serve import DWA, WORK, Server, free_port, python_environment, running, tree_cpu

ZIP = {"accept": "application/zip"}
MULTIPART = {"Accept": 'multipart/related; type="application/dicom"'}


@dataclass
class Answer:
    status: int
    etag: str
    size: int
    seconds: float
    cpu: float


def request(server: Server, method: str, path: str, headers: Mapping[str, str]) -> Answer:
    """One request on a new connection; the body read in pieces and dropped."""
    cpu = tree_cpu(server.pid)
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    try:
        conn.request(method, path, headers=dict(headers))
        response = conn.getresponse()
        size = 0
        while piece := response.read(1 << 20):
            size += len(piece)
        status, etag = response.status, response.getheader("etag") or ""
    finally:
        conn.close()
    seconds = time.perf_counter() - started
    return Answer(status, etag, size, seconds, tree_cpu(server.pid) - cpu)


@dataclass
class Kind:
    """One answer measured three ways."""

    name: str
    path: str
    headers: dict[str, str]
    runs: dict[str, list[Answer]] = field(default_factory=dict)

    def round(self, server: Server) -> None:
        full = request(server, "GET", self.path, self.headers)
        head = request(server, "HEAD", self.path, self.headers)
        conditional = {**self.headers, "If-None-Match": full.etag}
        cached = request(server, "GET", self.path, conditional)
        first = self.runs.get("GET", [full])[0]
        if (full.status, full.size, full.etag) != (200, first.size, first.etag) or not full.etag:
            raise SystemExit(f"{server.name} {self.name}: GET {full}, first {first}")
        if (head.status, head.size, head.etag) != (200, 0, full.etag):
            raise SystemExit(f"{server.name} {self.name}: HEAD {head}")
        if (cached.status, cached.size) != (304, 0):
            raise SystemExit(f"{server.name} {self.name}: If-None-Match {cached}")
        for method, answer in (("GET", full), ("HEAD", head), ("304", cached)):
            self.runs.setdefault(method, []).append(answer)


def convert(slices: int, rows: int, columns: int) -> tuple[str, str]:
    """The folder archive and the packed one, made fresh."""
    sys.path.insert(0, str(serve.HERE))
    from convert import generate
    from dicomweb_archive import Converter, ConvertOptions
    from dicomweb_archive.store.archive import open_archive

    source = generate(slices, rows, columns)
    folder, packed = WORK / "validators-folder", WORK / "validators-packed"
    for target in (folder, packed):
        shutil.rmtree(target, ignore_errors=True)
    result = Converter(folder, ConvertOptions()).convert([str(source)])
    if not result.ok or result.counts["converted"] != slices:
        raise SystemExit(f"conversion failed: {result.to_json()}")
    with open_archive(folder) as archive:
        [study] = archive.study_uids()
    pack = [str(DWA), "pack", str(folder), "--all", "-o", str(packed)]
    subprocess.run(pack, check=True, env=python_environment(), stdout=subprocess.DEVNULL)
    with open_archive(packed) as archive:
        assert archive.is_packed(study)
    return str(folder), study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--columns", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    _, study = convert(args.slices, args.rows, args.columns)
    env = python_environment()
    servers = []
    for name in ("folder", "packed"):
        port = free_port()
        archive = WORK / f"validators-{name}"
        command = [str(DWA), "serve", str(archive), "--port", str(port), "--no-access-log"]
        servers.append(Server(f"`dwa serve`, {name}", command, port, env))
    query = "?accept=application%2Fzip"
    with running(servers):
        kinds = {
            server.name: [
                Kind("application/zip", f"/dicomweb/studies/{study}{query}", {}),
                Kind("multipart", f"/dicomweb/studies/{study}", dict(MULTIPART)),
            ]
            for server in servers
        }
        for server in servers:  # warm-up: page cache, imports
            for kind in kinds[server.name]:
                Kind(kind.name, kind.path, kind.headers).round(server)
        for number in range(args.repeat):
            order = servers if number % 2 == 0 else servers[::-1]
            for server in order:
                for kind in kinds[server.name]:
                    kind.round(server)
    print(
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"Python {platform.python_version()}, {args.slices} slices of {args.rows}x{args.columns}, "
        f"median of {args.repeat} interleaved rounds"
    )
    print()
    print(
        "| Server | Answer | Body bytes | GET ms | HEAD ms | 304 ms | GET CPU ms | HEAD CPU ms "
        "| 304 CPU ms | GET / HEAD | GET / 304 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for server in servers:
        for kind in kinds[server.name]:
            wall = {m: statistics.median(a.seconds for a in r) * 1000 for m, r in kind.runs.items()}
            cpu = {m: statistics.median(a.cpu for a in r) * 1000 for m, r in kind.runs.items()}
            print(
                f"| {server.name} | {kind.name} | {kind.runs['GET'][0].size:,} "
                f"| {wall['GET']:,.0f} | {wall['HEAD']:.1f} | {wall['304']:.1f} "
                f"| {cpu['GET']:,.0f} | {cpu['HEAD']:.0f} | {cpu['304']:.0f} "
                f"| {wall['GET'] / wall['HEAD']:,.0f} | {wall['GET'] / wall['304']:,.0f} |"
            )


if __name__ == "__main__":
    main()
