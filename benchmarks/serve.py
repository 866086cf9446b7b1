"""Serving an archive: ``dwa serve`` against nginx with ``deploy/nginx.conf``, and ASGI servers.

    .venv/bin/python benchmarks/serve.py [--quick] [--repeat 3] [--duration 10] [--profile]
                                         [--no-http2]

Converts the synthetic CT series of ``benchmarks/convert.py`` (300 slices of
512x512 by default) into one fresh archive, starts every server on it at once
(each on its own loopback port), then measures with ``wrk``, one server after
the other within each of ``--repeat`` rounds, and reports medians:

* single-frame WADO-RS GETs cycling over all instances, 25 in flight, with
  OHIF's ``Accept``: requests/s, p50/p99 latency, MB/s of frame bytes;
* the series metadata (gzip accepted), one at a time and ``--meta-concurrency``
  in flight;
* QIDO-RS ``/studies`` and ``/studies/{st}/series``, one at a time.

The servers: nginx running ``deploy/nginx.conf`` (rendered for a private prefix,
as the integration tests do) with 1 and with 2 worker processes, each the
baseline of the servers with as many processes; ``dwa serve`` as shipped
(uvicorn with uvloop, httptools and ``sendfile``), with ``--workers 2`` and
with ``--no-access-log``; and, as candidates, the same application through the
factory :func:`app` on other ASGI servers, one process each, no access log:
uvicorn's pure-Python stack (``--http h11 --loop asyncio``), Granian (which
sends stored files itself, ``http.response.pathsend``) and Hypercorn, when
installed.  The servers run this checkout's ``src/``.  Besides the client's
view, each run records the CPU time of the server's processes (from
``/proc``) and of ``wrk``.

Then the frames again over HTTPS and HTTP/2, as a browser sends them to one
origin (``h2load``, Debian's ``nghttp2-client``: one connection, 25 streams in
flight; ``--no-http2`` skips it): nginx serving the archive itself with
``listen ssl http2``, and the shipped front ``deploy/nginx-https.conf`` (one
worker) passing every request to the HTTP/1.1 nginx above and to ``dwa serve``
(the front's CPU counted with the server behind it).  All three take 10^8
requests per connection (``keepalive_requests``), because h2load, unlike a
browser, does not reconnect when nginx ends one after its default 1,000.

Every response is checked before the load (status 200, body equal to the file
it comes from, or the expected number of QIDO rows) and every load run must end
without errors, non-2xx/3xx answers or a body size other than the checked one.
``--profile`` also samples ``dwa serve`` with py-spy during a frame load.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gzip
import http.client
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "work"
DEPLOY_CONF = REPO / "deploy" / "nginx.conf"
FRONT_CONF = REPO / "deploy" / "nginx-https.conf"
DWA = Path(sys.executable).parent / "dwa"
#: The archive the uvicorn factory serves (set for the uvicorn processes).
ARCHIVE_VARIABLE = "DWA_BENCH_ARCHIVE"

#: What OHIF (dicomweb-client with omitQuotationForMultipartRequest) sends for a frame.
FRAME_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"
DICOM_JSON = "application/dicom+json"
#: OHIF's default number of image requests in flight.
FRAME_CONCURRENCY = 25
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
START_TIMEOUT = 60.0
#: Rows of each profile listing.
TOP = 25

LUA = r"""
-- Cycles through the paths of a file (one a line); each thread starts at another
-- place.  A thread stops after `limit` requests (wrk itself stops at -d).
local paths, index, sent, limit = {}, 0, 0, 0
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  limit = tonumber(args[2])
  index = (tonumber(wrk.thread:get("id")) * 97) % #paths
end

function request()
  sent = sent + 1
  if sent > limit then wrk.thread:stop() end
  index = index % #paths + 1
  return wrk.format(nil, paths[index])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %.0f, "bytes": %.0f, "duration_us": %.0f, "connect": %.0f, ' ..
    '"read": %.0f, "write": %.0f, "status": %.0f, "timeout": %.0f, ' ..
    '"p50_us": %.0f, "p99_us": %.0f, "max_us": %.0f}\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def app() -> Starlette:
    """The application for ``uvicorn --factory serve:app`` (archive from the environment)."""
    from dicomweb_archive.server.app import create_app

    return create_app(os.environ[ARCHIVE_VARIABLE])


# --- set-up -------------------------------------------------------------------------


def ensure_program(name: str, package: str) -> str:
    """The program, installed from Debian's package when missing (as ``make system-deps``)."""
    found = shutil.which(name) or (
        f"/usr/sbin/{name}" if os.access(f"/usr/sbin/{name}", os.X_OK) else None
    )
    if found:
        return found
    apt_install(package)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin")
    if not found:
        raise SystemExit(f"{name} still missing after installing {package}")
    return found


def apt_install(package: str) -> None:
    """Install a Debian package (as ``make system-deps`` does)."""
    print(f"installing Debian package {package}", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    subprocess.run([*sudo, "apt-get", "update", "-qq", *lock], check=True, env=env, timeout=900)
    subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", *lock, package],
        check=True,
        env=env,
        timeout=900,
        stdout=subprocess.DEVNULL,
    )


def convert_archive(slices: int, rows: int, columns: int) -> Path:
    """A fresh archive of the generated series, with its QIDO index."""
    sys.path.insert(0, str(HERE))
    from convert import generate
    from dicomweb_archive import Converter, ConvertOptions
    from dicomweb_archive.store.archive import open_archive
    from dicomweb_archive.store.catalog import Catalog

    source = generate(slices, rows, columns)
    target = WORK / "serve-archive"
    shutil.rmtree(target, ignore_errors=True)
    result = Converter(target, ConvertOptions(workers=os.cpu_count() or 1)).convert([str(source)])
    if not result.ok or result.counts["converted"] != slices:
        raise SystemExit(f"conversion failed: {result.to_json()}")
    # Built here once: servers starting together must not all build it.
    with open_archive(target) as archive:
        Catalog(archive).rebuild_index()
    return target


@dataclass
class Targets:
    """The URLs measured and the bytes each must answer with."""

    study: str
    series: str
    frames: list[tuple[str, bytes]]
    metadata: tuple[str, bytes]
    qido: list[tuple[str, int]]  # URL, number of rows


def targets(archive: Path, base: str = "/dicomweb") -> Targets:
    frames = sorted(archive.glob("studies/*/series/*/instances/*/frames/1"))
    if not frames:
        raise SystemExit(f"{archive}: no frames")
    st, se = frames[0].parts[-7], frames[0].parts[-5]
    rel = [f.relative_to(archive).as_posix() for f in frames]
    series = archive / "studies" / st / "series" / se
    return Targets(
        study=st,
        series=se,
        frames=[(f"{base}/{r}", f.read_bytes()) for r, f in zip(rel, frames, strict=True)],
        metadata=(
            f"{base}/studies/{st}/series/{se}/metadata",
            (series / "metadata.gz").read_bytes(),
        ),
        qido=[(f"{base}/studies", 1), (f"{base}/studies/{st}/series", 1)],
    )


# --- servers ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def render_conf(template: str, values: Mapping[str, str | None]) -> str:
    """Replace the value of each named directive of ``template`` (as tests/integration)."""
    text = template
    for directive, value in values.items():
        pattern = re.compile(
            rf"^(?P<indent>[ \t]*){re.escape(directive)}[ \t]+[^;#\n]*;", re.MULTILINE
        )

        def replace(
            match: re.Match[str], directive: str = directive, value: str | None = value
        ) -> str:
            return "" if value is None else f"{match['indent']}{directive} {value};"

        text, count = pattern.subn(replace, text)
        if count != 1:
            raise SystemExit(f"{DEPLOY_CONF}: expected one `{directive}` directive, found {count}")
    return text


def quoted(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Server:
    name: str
    command: list[str]
    port: int
    env: dict[str, str] | None = None
    #: Processes serving (nginx's worker_processes, ``--workers``).
    workers: int = 1
    #: HTTPS (with HTTP/2 offered) instead of plain HTTP/1.1.
    tls: bool = False
    #: Servers this one passes requests to (their CPU counts as its own).
    upstreams: tuple[Server, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu(self) -> float:
        """CPU seconds of its processes and of its upstreams'."""
        return tree_cpu(self.pid) + sum(u.cpu() for u in self.upstreams)

    def start(self) -> None:
        self.log_path = WORK / "serve-logs" / f"{re.sub(r'[^a-z0-9]+', '-', self.name.lower())}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )

    def wait_until_serving(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if get(self.port, "/dicomweb/studies", {}, self.tls)[0] == 200:
                    return
            time.sleep(0.1)
        output = self.log_path.read_text(errors="replace") if self.log_path else ""
        raise SystemExit(f"{self.name} did not start:\n{output[-3000:]}")

    def stop(self) -> None:
        """TERM what we started (uvicorn's and nginx's masters stop their workers)."""
        process = self.process
        if process is not None and process.poll() is None:
            children = _children(process.pid)
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
                for pid in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, 9)
        if self.log is not None:
            self.log.close()
            self.log = None


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


TICKS = os.sysconf("SC_CLK_TCK")


def tree_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process, its threads and its descendants."""
    user = system = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        user += int(fields[11]) / TICKS  # utime
        system += int(fields[12]) / TICKS  # stime
        pending += _children(current)
    return user, system


def tree_cpu(pid: int) -> float:
    return sum(tree_times(pid))


def children_cpu() -> float:
    """CPU seconds of this script's finished children (wrk)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def nginx_paths(prefix: Path) -> dict[str, str | None]:
    """The directives that keep nginx inside ``prefix`` (no root rights needed)."""
    shutil.rmtree(prefix, ignore_errors=True)
    (prefix / "logs").mkdir(parents=True)
    (prefix / "temp").mkdir()
    return {
        "user": "root" if os.geteuid() == 0 else None,
        "pid": quoted(prefix / "nginx.pid"),
        "error_log": quoted(prefix / "logs" / "error.log"),
        "access_log": quoted(prefix / "logs" / "access.log"),
        **{f"{name}_temp_path": quoted(prefix / "temp" / name) for name in TEMP_PATHS},
    }


#: h2load does not open a new connection when nginx ends one after its
#: ``keepalive_requests`` (1,000; a browser would): the HTTP/2 servers take more.
MANY_REQUESTS = "http {\n    keepalive_requests 100000000;\n"


def nginx_command(binary: str, prefix: Path, conf: str) -> list[str]:
    """nginx in the foreground on ``conf`` (written into ``prefix``, checked first)."""
    if "ssl http2" in conf:
        conf = conf.replace("http {\n", MANY_REQUESTS, 1)
    path = prefix / "nginx.conf"
    path.write_text(conf)
    command = [binary, "-p", f"{prefix}/", "-c", str(path)]
    subprocess.run([*command, "-t", "-q"], check=True, timeout=30)
    return [*command, "-g", "daemon off;"]


def nginx_server(
    binary: str, archive: Path, workers: int, tls: tuple[Path, Path] | None = None
) -> Server:
    """nginx serving the archive as ``deploy/nginx.conf`` (over HTTPS and HTTP/2 with ``tls``)."""
    prefix = WORK / f"serve-nginx-{workers}{'-tls' if tls else ''}"
    port = free_port()
    listen = f"127.0.0.1:{port}"
    if tls:
        # The directive's value ends the line: the certificate's two follow it.
        cert, key = tls
        listen += f" ssl http2; ssl_certificate {quoted(cert)}; ssl_certificate_key {quoted(key)}"
    values: dict[str, str | None] = {
        **nginx_paths(prefix),
        "worker_processes": str(workers),
        "listen": listen,
        "root": quoted(archive),
    }
    command = nginx_command(binary, prefix, render_conf(DEPLOY_CONF.read_text(), values))
    name = f"nginx (deploy/nginx.conf), {workers} worker{'s' if workers > 1 else ''}"
    if tls:
        name = f"nginx (deploy/nginx.conf, `listen ssl http2`), {workers} worker"
    return Server(name, command, port, workers=workers, tls=tls is not None)


def front_server(binary: str, upstream: Server, tls: tuple[Path, Path]) -> Server:
    """``deploy/nginx-https.conf`` (one worker) passing every request to ``upstream``."""
    prefix = WORK / f"serve-front-{upstream.port}"
    port = free_port()
    cert, key = tls
    values: dict[str, str | None] = {
        **nginx_paths(prefix),
        "worker_processes": "1",
        "server": f"127.0.0.1:{upstream.port}",
        "listen": f"127.0.0.1:{port} ssl http2",
        "ssl_certificate": quoted(cert),
        "ssl_certificate_key": quoted(key),
    }
    command = nginx_command(binary, prefix, render_conf(FRONT_CONF.read_text(), values))
    name = f"deploy/nginx-https.conf (1 worker) → {upstream.name}"
    return Server(name, command, port, tls=True, upstreams=(upstream,))


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (as the browser tests make theirs)."""
    sys.path.insert(0, str(REPO))
    from tests.browser.conftest import self_signed as make

    folder.mkdir(parents=True, exist_ok=True)
    return make(folder)


def python_environment() -> dict[str, str]:
    """Bytecode cached (as an installed package); this checkout's sources, and ``serve:app``."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(WORK / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(HERE)])
    return env


def our_servers(archive: Path) -> list[Server]:
    """``dwa serve`` as shipped and in variants; the application on uvicorn's h11 + asyncio."""
    env = dict(python_environment(), **{ARCHIVE_VARIABLE: str(archive)})
    variants = [
        ("`dwa serve`", []),
        ("`dwa serve --workers 2`", ["--workers", "2"]),
        ("`dwa serve --no-access-log`", ["--no-access-log"]),
    ]
    servers = []
    for name, options in variants:
        port = free_port()
        command = [str(DWA), "serve", str(archive), "--port", str(port), *options]
        workers = 2 if "--workers" in options else 1
        servers.append(Server(name, command, port, env, workers=workers))
    # The same application on other ASGI servers, one process each, no access log.
    python = [sys.executable, "-m"]
    port = free_port()
    uvicorn = [*python, "uvicorn", "--factory", "serve:app", "--host", "127.0.0.1"]
    uvicorn += ["--port", str(port), "--http", "h11", "--loop", "asyncio", "--no-access-log"]
    servers.append(Server("same application, uvicorn h11 + asyncio", uvicorn, port, env))
    if importlib.util.find_spec("granian"):
        port = free_port()
        granian = [*python, "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1"]
        granian += ["--port", str(port), "--no-access-log", "--log-level", "warning", "serve:app"]
        servers.append(Server("same application, Granian (pathsend)", granian, port, env))
    if importlib.util.find_spec("hypercorn"):
        port = free_port()
        hypercorn = [*python, "hypercorn", "--bind", f"127.0.0.1:{port}", "serve:app()"]
        servers.append(Server("same application, Hypercorn", hypercorn, port, env))
    return servers


@contextlib.contextmanager
def running(servers: Sequence[Server]) -> Iterator[None]:
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_until_serving()
        yield
    finally:
        for server in servers:
            server.stop()


# --- checks ---------------------------------------------------------------------------


def get(
    port: int, path: str, headers: Mapping[str, str], tls: bool = False
) -> tuple[int, Mapping[str, str], bytes]:
    conn: http.client.HTTPConnection
    if tls:  # the benchmark's own self-signed certificate
        context = ssl._create_unverified_context()
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


FRAME_HEADERS = {"Accept": FRAME_ACCEPT}
JSON_HEADERS = {"Accept": DICOM_JSON, "Accept-Encoding": "gzip"}


def check_frames(server: Server, frames: list[tuple[str, bytes]]) -> int:
    """Every frame answers 200 with the stored bytes; returns the common body length."""
    for url, expected in frames:
        status, _, body = get(server.port, url, FRAME_HEADERS, server.tls)
        if status != 200 or body != expected:
            raise SystemExit(f"{server.name}: {url}: {status}, {len(body)} bytes, not the file")
    sizes = {len(b) for _, b in frames}
    if len(sizes) != 1:
        raise SystemExit(f"frames of different sizes: {sorted(sizes)}")
    return sizes.pop()


def check_metadata(server: Server, url: str, expected: bytes) -> int:
    """The stored document; from ``dwa serve`` with absolute BulkDataURIs (see server/urls.py)."""
    from dicomweb_archive.server.urls import absolute_bulkdata_uris

    status, headers, body = get(server.port, url, JSON_HEADERS)
    document = gzip.decompress(expected)
    if not server.name.startswith("nginx"):
        study = url.partition("/series/")[0]
        document = absolute_bulkdata_uris(document, f"http://127.0.0.1:{server.port}{study}")
    gzipped = headers.get("content-encoding") == "gzip"
    if status != 200 or not gzipped or gzip.decompress(body) != document:
        raise SystemExit(f"{server.name}: {url}: {status}, {len(body)} bytes, not the metadata")
    return len(body)


def check_qido(server: Server, url: str, rows: int) -> int:
    status, headers, body = get(server.port, url, JSON_HEADERS)
    text = gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body
    if status != 200 or len(json.loads(text)) != rows:
        raise SystemExit(f"{server.name}: {url}: {status}, not {rows} rows")
    return len(body)


# --- load ---------------------------------------------------------------------------------


@dataclass
class Run:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    body_bytes: int
    #: CPU seconds (user + system) of the server's processes and of wrk during the run.
    server_cpu: float
    client_cpu: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.requests * self.body_bytes / self.seconds / 1e6


@dataclass(frozen=True)
class Summary:
    """Medians over the runs of one measurement."""

    per_second: float
    p50_ms: float
    p99_ms: float
    mb_per_second: float
    #: Server CPU per request, and busy cores of the server and of the client.
    cpu_ms: float
    server_cores: float
    client_cores: float
    #: The client's CPU per request.
    client_cpu_ms: float


@dataclass(frozen=True)
class Workload:
    """Paths to cycle through, request headers, and the body length every answer has."""

    paths: list[str]
    headers: Mapping[str, str]
    body: int


@dataclass
class Load:
    """``wrk`` runs, recorded by (measurement, server)."""

    wrk: str
    lua: Path
    limit: int
    runs: dict[tuple[str, str], list[Run]] = field(default_factory=dict)

    def run(
        self,
        key: tuple[str, str],
        server: Server,
        work: Workload,
        connections: int,
        seconds: int,
        record: bool = True,
    ) -> Run:
        listing = WORK / "serve-wrk" / "paths.txt"
        listing.write_text("\n".join(work.paths) + "\n")
        threads = 1 if connections < 4 else 2
        command = [self.wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"]
        command += ["--timeout", "10s", "--latency", "-s", str(self.lua)]
        for name, value in work.headers.items():
            command += ["-H", f"{name}: {value}"]
        command += [f"http://127.0.0.1:{server.port}", "--", str(listing)]
        command.append(str(max(1, self.limit // threads)))
        server_before, client_before = server.cpu(), children_cpu()
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        server_cpu, client_cpu = (
            server.cpu() - server_before,
            children_cpu() - client_before,
        )
        line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
        if done.returncode or line is None:
            raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        out = json.loads(line.removeprefix("RESULT "))
        errors = {k: out[k] for k in ("connect", "read", "write", "status", "timeout") if out[k]}
        if errors or not out["requests"]:
            raise SystemExit(f"{server.name} {key[0]}: errors {errors}:\n{done.stdout}")
        # Every answer must have carried the checked body: the bytes per answer,
        # headers included, lie just above it (a 304 or an error would be short).
        per_answer = out["bytes"] / out["requests"]
        if not 40 <= per_answer - work.body <= 2048:
            raise SystemExit(
                f"{server.name} {key[0]}: {per_answer:.0f} bytes per answer "
                f"for a body of {work.body}:\n{done.stdout}"
            )
        result = Run(
            int(out["requests"]),
            out["duration_us"] / 1e6,
            out["p50_us"] / 1e3,
            out["p99_us"] / 1e3,
            work.body,
            server_cpu,
            client_cpu,
        )
        if record:
            self.runs.setdefault(key, []).append(result)
        return result

    def median(self, key: tuple[str, str]) -> Summary:
        return medians(self.runs[key])


def medians(runs: list[Run]) -> Summary:
    return Summary(
        statistics.median(r.per_second for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        statistics.median(r.mb_per_second for r in runs),
        statistics.median(r.server_cpu / r.requests * 1e3 for r in runs),
        statistics.median(r.server_cpu / r.seconds for r in runs),
        statistics.median(r.client_cpu / r.seconds for r in runs),
        statistics.median(r.client_cpu / r.requests * 1e3 for r in runs),
    )


@dataclass
class H2Load:
    """``h2load`` runs over HTTPS: one connection with OHIF's requests in flight as
    HTTP/2 streams, as a browser sends them to one origin."""

    h2load: str
    runs: dict[tuple[str, str], list[Run]] = field(default_factory=dict)
    #: Requests per second of each server's warm-up run.
    rates: dict[str, float] = field(default_factory=dict)

    def run(
        self,
        key: tuple[str, str],
        server: Server,
        work: Workload,
        seconds: int,
        record: bool = True,
    ) -> Run:
        folder = WORK / "serve-h2load"
        folder.mkdir(parents=True, exist_ok=True)
        listing, log = folder / f"{server.port}.uris", folder / f"{server.port}.log"
        origin = f"https://127.0.0.1:{server.port}"
        listing.write_text("".join(f"{origin}{path}\n" for path in work.paths))
        # A number of requests, not -D (h2load 1.52 counts no request of a timed
        # run on one connection): as many as the warm-up's rate gives in ``seconds``.
        count = max(1_000, round(self.rates.get(server.name, 0.0) * seconds)) if record else 2_000
        command = [self.h2load, "-c", "1", "-t", "1", "-m", str(FRAME_CONCURRENCY)]
        command += ["-n", str(count), "-i", str(listing)]
        command += ["--log-file", str(log)]
        for name, value in work.headers.items():
            command += ["-H", f"{name}: {value}"]
        server_before, client_before = server.cpu(), children_cpu()
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        server_cpu, client_cpu = server.cpu() - server_before, children_cpu() - client_before
        out = done.stdout
        finished = re.search(r"finished in ([\d.]+)s", out)
        counts = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
        codes = re.search(r"status codes: (\d+) 2xx", out)
        data = re.search(r"\((\d+)\) data", out)
        if done.returncode or not (finished and counts and codes and data):
            raise SystemExit(f"h2load failed ({done.returncode}):\n{out}\n{done.stderr}")
        if "Application protocol: h2" not in out:
            raise SystemExit(f"{server.name}: HTTP/2 was not negotiated:\n{out}")
        requests = int(counts[2])
        if not requests or requests != int(counts[1]) or requests != int(codes[1]):
            raise SystemExit(f"{server.name} {key[0]}: failed requests:\n{out}")
        # Every answer must have carried the checked body (DATA frames' payload).
        if abs(int(data[1]) / requests - work.body) > work.body * 0.01:
            raise SystemExit(
                f"{server.name} {key[0]}: {int(data[1]) / requests:.0f} bytes of data per "
                f"answer for a body of {work.body}:\n{out}"
            )
        # Per request: start (us since the epoch), status, microseconds to its end.
        elapsed = sorted(int(line.split("\t")[2]) for line in log.read_text().splitlines())
        result = Run(
            requests,
            float(finished[1]),
            elapsed[len(elapsed) // 2] / 1e3,
            elapsed[min(len(elapsed) - 1, len(elapsed) * 99 // 100)] / 1e3,
            work.body,
            server_cpu,
            client_cpu,
        )
        if record:
            self.runs.setdefault(key, []).append(result)
        else:
            self.rates[server.name] = result.per_second
        return result

    def median(self, key: tuple[str, str]) -> Summary:
        return medians(self.runs[key])


# --- profile ----------------------------------------------------------------------------


def profile(py_spy: str, load: Load, server: Server, work: Workload, seconds: int) -> str:
    """py-spy samples of ``server`` under the frame load: own and inclusive time."""
    assert server.process is not None
    raw = WORK / "serve-profile.txt"
    raw.unlink(missing_ok=True)
    command = [py_spy, "record", "--pid", str(server.process.pid), "--duration", str(seconds + 2)]
    command += ["--rate", "200", "--format", "raw", "--function", "--gil", "--nonblocking"]
    command += ["-o", str(raw)]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    before = tree_times(server.pid)
    run = load.run(("profile", server.name), server, work, FRAME_CONCURRENCY, seconds, False)
    user, system = (
        after - first for after, first in zip(tree_times(server.pid), before, strict=True)
    )
    _, err = spy.communicate(timeout=seconds + 60)
    if spy.returncode or not raw.exists():
        return f"py-spy failed: {err.decode(errors='replace')}"
    return "\n".join(
        [
            f"{server.name} under {seconds} s of frame load, {FRAME_CONCURRENCY} in flight: "
            f"{run.per_second:,.0f} requests/s under the profiler; CPU per request "
            f"{user / run.requests * 1e3:.2f} ms user + {system / run.requests * 1e3:.2f} ms "
            f"system ({(user + system) / run.seconds:.2f} cores).",
            *summarize(raw, run.seconds),
        ]
    )


def summarize(raw: Path, seconds: float, rate: int = 200) -> list[str]:
    """Own time by package and by function, inclusive time by function, of py-spy's samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [f for f in stack.split(";") if " (" in f]
        if not frames or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        own[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return ["py-spy recorded no samples"]
    inner = [(name, n) for name, n in inclusive.most_common() if not _OUTER.search(name)]
    return [
        f"py-spy --gil: {total} samples at {rate}/s of the thread holding the GIL "
        f"({total / rate / seconds:.0%} of the time); shares of those samples\n",
        "Own time by package/module:",
        *(f"  {n / total:6.1%}  {name}" for name, n in packages.most_common(TOP)),
        "\nOwn time by function:",
        *(f"  {n / total:6.1%}  {name}" for name, n in own.most_common(TOP)),
        "\nInclusive time by function (start-up, loop and thread plumbing left out):",
        *(f"  {n / total:6.1%}  {name}" for name, n in inner[:TOP]),
    ]


def _package(frame: str) -> str:
    """The top-level package or standard module of a ``name (file:line)`` frame."""
    path = frame[frame.rfind(" (") + 2 :].rstrip(")").rpartition(":")[0]
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        path = path.rpartition(marker)[2] if marker in path else path
    return path.split("/")[0].removesuffix(".py")


#: Frames every sample of the event loop passes through (start-up and loop plumbing).
_OUTER = re.compile(
    r"\((click/|dwa:|<frozen runpy>|threading\.py|uvicorn/(main|server|_compat|__main__)\.py"
    r"|asyncio/(runners|base_events|events)\.py|dicomweb_archive/cli/)"
)


# --- report --------------------------------------------------------------------------------


def version(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else "?"


def _versions(*names: str) -> str:
    found = [n for n in names if importlib.util.find_spec(n)]
    return ", ".join(f"{n} {importlib.metadata.version(n)}" for n in found)


def git_state() -> str:
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"commit {head or '?'}" + (" with uncommitted changes under src/" if dirty else "")


def measure(load: Load, servers: list[Server], t: Targets, args: argparse.Namespace) -> None:
    """Check every server, warm it up, then ``--repeat`` rounds of every measurement."""
    frame_body = len(t.frames[0][1])
    frames = Workload([url for url, _ in t.frames], FRAME_HEADERS, frame_body)
    meta: dict[str, Workload] = {}
    qido: dict[tuple[str, str], Workload] = {}
    for server in servers:
        check_frames(server, t.frames)
        length = check_metadata(server, *t.metadata)
        meta[server.name] = Workload([t.metadata[0]], JSON_HEADERS, length)
        for label, (url, rows) in zip(("studies", "series"), t.qido, strict=True):
            qido[(label, server.name)] = Workload(
                [url], JSON_HEADERS, check_qido(server, url, rows)
            )
        # Page cache, imports, first connections.
        load.run(("warm", server.name), server, frames, FRAME_CONCURRENCY, 2, record=False)
    short = max(args.duration // 2, 1)
    for round_ in range(args.repeat):
        print(f"round {round_ + 1}/{args.repeat}", file=sys.stderr)
        for server in servers:
            load.run(("frames", server.name), server, frames, FRAME_CONCURRENCY, args.duration)
        for server in servers:
            work = meta[server.name]
            load.run(("meta-1", server.name), server, work, 1, short)
            load.run(("meta-n", server.name), server, work, args.meta_concurrency, short)
        for server in servers:
            for label in ("studies", "series"):
                work = qido[(label, server.name)]
                load.run((label, server.name), server, work, 1, max(short // 2, 1))
    # Nothing may have gone wrong on the way: check again after the load.
    for server in servers:
        check_frames(server, t.frames[:20])


def report(load: Load, servers: list[Server], args: argparse.Namespace) -> None:
    nginx = {
        s.workers: load.median(("frames", s.name)) for s in servers if s.name.startswith("nginx")
    }
    print(f"Single-frame GETs, {FRAME_CONCURRENCY} in flight, OHIF's Accept:\n")
    print(
        "| Server | Requests/s | p50 ms | p99 ms | MB/s | vs nginx, same workers "
        "| Server CPU ms/request | wrk CPU ms/request | Server cores busy | wrk cores busy |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for server in servers:
        m = load.median(("frames", server.name))
        print(
            f"| {server.name} | {m.per_second:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | "
            f"{m.mb_per_second:,.0f} | {m.per_second / nginx[server.workers].per_second:.2f} | "
            f"{m.cpu_ms:.3f} | {m.client_cpu_ms:.3f} | {m.server_cores:.2f} | "
            f"{m.client_cores:.2f} |"
        )
    n = args.meta_concurrency
    print(
        f"\nSeries metadata (gzip accepted), one at a time (x1) and {n} in flight (x{n}); "
        "QIDO-RS one at a time; latencies in ms:\n"
    )
    print(
        f"| Server | metadata x1 p50 | p99 | /s | metadata x{n} p50 | p99 | /s | CPU ms/request "
        "| `/studies` p50 | p99 | `/studies/{st}/series` p50 | p99 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for server in servers:
        cells = []
        for key in ("meta-1", "meta-n", "studies", "series"):
            m = load.median((key, server.name))
            cells += [f"{m.p50_ms:.2f}", f"{m.p99_ms:.2f}"]
            if key.startswith("meta"):
                cells.append(f"{m.per_second:,.0f}")
            if key == "meta-n":
                cells.append(f"{m.cpu_ms:.2f}")
        print(f"| {server.name} | " + " | ".join(cells) + " |")


def http2_servers(nginx: str, archive: Path, servers: list[Server]) -> list[Server]:
    """nginx over HTTP/2 itself; the shipped HTTP/2 front before nginx and before `dwa serve`."""
    tls = self_signed(WORK / "serve-tls")
    static = next(s for s in servers if s.name.startswith("nginx") and s.workers == 1)
    ours = next(s for s in servers if s.name == "`dwa serve`")
    return [
        nginx_server(nginx, archive, 1, tls),
        front_server(nginx, static, tls),
        front_server(nginx, ours, tls),
    ]


def measure_http2(
    load: H2Load, servers: list[Server], t: Targets, args: argparse.Namespace
) -> None:
    """The frames again over HTTPS and HTTP/2: ``--repeat`` rounds, each server in turn."""
    frames = Workload([url for url, _ in t.frames], FRAME_HEADERS, len(t.frames[0][1]))
    for server in servers:
        check_frames(server, t.frames)
        load.run(("warm", server.name), server, frames, 2, record=False)
    for round_ in range(args.repeat):
        print(f"HTTP/2 round {round_ + 1}/{args.repeat}", file=sys.stderr)
        for server in servers:
            load.run(("frames", server.name), server, frames, args.duration)
    for server in servers:
        check_frames(server, t.frames[:20])


def report_http2(load: H2Load, servers: list[Server]) -> None:
    direct, front_nginx, front_ours = (load.median(("frames", s.name)) for s in servers)
    print(
        f"\nSingle-frame GETs over HTTPS and HTTP/2 (`h2load`, one connection, "
        f"{FRAME_CONCURRENCY} streams in flight, OHIF's Accept); the front's CPU counts "
        "with the server behind it:\n"
    )
    print(
        "| Server | Requests/s | p50 ms | p99 ms | MB/s | vs nginx over HTTP/2 | vs the front "
        "before nginx | Server CPU ms/request | h2load CPU ms/request |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for server, m in zip(servers, (direct, front_nginx, front_ours), strict=True):
        print(
            f"| {server.name} | {m.per_second:,.0f} | {m.p50_ms:.2f} | {m.p99_ms:.2f} | "
            f"{m.mb_per_second:,.0f} | {m.per_second / direct.per_second:.2f} | "
            f"{m.per_second / front_nginx.per_second:.2f} | {m.cpu_ms:.3f} | "
            f"{m.client_cpu_ms:.3f} |"
        )


def load_arguments(doc: str | None) -> argparse.ArgumentParser:
    """The options of a load benchmark: the series' size, rounds, run lengths."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--columns", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each frame run")
    parser.add_argument("--meta-concurrency", type=int, default=6)
    parser.add_argument("--limit", type=int, default=2_000_000, help="most requests per run")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    return parser


def parse_load_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The command line, ``--quick`` applied; ``dwa`` must be installed."""
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.duration, args.limit = 1, 2, 100_000
    if not DWA.exists():
        raise SystemExit(f"{DWA} not found: install the package with the cli and server extras")
    return args


def main() -> None:
    parser = load_arguments(__doc__)
    parser.add_argument("--profile", action="store_true", help="py-spy on `dwa serve`")
    parser.add_argument("--no-http2", action="store_true", help="HTTP/1.1 only")
    args = parse_load_arguments(parser)

    wrk = ensure_program("wrk", "wrk")
    nginx = ensure_program("nginx", "nginx-core")
    (WORK / "serve-wrk").mkdir(parents=True, exist_ok=True)
    lua = WORK / "serve-wrk" / "cycle.lua"
    lua.write_text(LUA)
    load = Load(wrk, lua, args.limit)

    archive = convert_archive(args.slices, args.rows, args.columns)
    t = targets(archive)
    servers = [nginx_server(nginx, archive, 1), nginx_server(nginx, archive, 2)]
    servers += our_servers(archive)
    profile_text = ""
    h2 = H2Load(ensure_program("h2load", "nghttp2-client"))
    h2_servers = [] if args.no_http2 else http2_servers(nginx, archive, servers)
    load_before = os.getloadavg()[0]
    with running(servers):
        measure(load, servers, t, args)
        with running(h2_servers):
            measure_http2(h2, h2_servers, t, args)
        if args.profile:
            py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            if not os.access(py_spy, os.X_OK):
                profile_text = "py-spy not found (`.venv/bin/pip install py-spy`)"
            else:
                frames = Workload([u for u, _ in t.frames], FRAME_HEADERS, len(t.frames[0][1]))
                profile_text = profile(py_spy, load, servers[2], frames, max(args.duration, 5))

    short = max(args.duration // 2, 1)
    print(
        f"\n{args.slices} instances of {args.rows}x{args.columns} (frame body "
        f"{len(t.frames[0][1]):,} bytes, series metadata.gz {len(t.metadata[1]):,} bytes); "
        f"{datetime.date.today()}, {os.cpu_count()} cores ({platform.machine()}), "
        f"Python {platform.python_version()}, {version([nginx, '-v'])}, "
        f"{version([wrk, '-v']).split(' [')[0]}, {_versions('uvicorn', 'granian', 'hypercorn')}, "
        f"starlette {importlib.metadata.version('starlette')}; {git_state()}; "
        f"median of {args.repeat} rounds; each run {args.duration} s (frames), {short} s "
        f"(metadata), {max(short // 2, 1)} s (QIDO); client and servers on this machine; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after.\n"
    )
    report(load, servers, args)
    if h2_servers:
        report_http2(h2, h2_servers)
    if profile_text:
        print("\n```\n" + profile_text + "\n```")


if __name__ == "__main__":
    main()
