"""Fixtures that serve a freshly converted archive with a real nginx.

The server runs ``deploy/nginx.conf`` itself, rendered for the test run by
:func:`render_conf`: the directives marked ``EDIT`` in that file (root, listen,
user, pid, logs, temp paths) are replaced, everything else is used verbatim.
nginx runs in the foreground with its own prefix in a temporary folder, so it
needs no root rights and never touches /etc, /var or /run.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomweb_archive import Converter, ConvertOptions
from tests import ports

REPO = Path(__file__).resolve().parents[2]
DEPLOY_CONF = REPO / "deploy" / "nginx.conf"
#: Real files: native CT and MR, a two-frame RLE image, a JPEG 2000 image.
SOURCE_NAMES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_rle_2frame.dcm", "JPEG2000.dcm")
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def find_nginx() -> str:
    """The nginx binary; a missing nginx fails the tests, it never skips them."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    if found is None:
        pytest.fail(
            "nginx is not installed, so deploy/nginx.conf cannot be tested. "
            "`make test` installs it (Debian package nginx-core); or run "
            "`apt-get install nginx-core`.",
            pytrace=False,
        )
    return found


def render_conf(template: str, values: Mapping[str, str | None]) -> str:
    """Replace the value of each named top-level directive in ``template``.

    Every directive in ``values`` must occur exactly once (at the start of a
    line, comments aside); ``None`` removes it.  Anything else in the file is
    kept, so the test runs the deployed configuration, not a copy of it.
    """
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
            raise AssertionError(
                f"{DEPLOY_CONF}: expected exactly one `{directive}` directive "
                f"to rewrite for the test server, found {count}"
            )
    return text


def _quoted(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass
class NginxServer:
    """A running nginx serving ``archive`` at ``http://127.0.0.1:{port}/dicomweb``."""

    port: int
    archive: Path
    prefix: Path
    conf: Path

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The DICOMweb service root."""
        return f"{self.origin}/dicomweb"

    def request(
        self,
        path: str,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
    ) -> Response:
        """One raw HTTP/1.1 request; no header is added but Host.

        ``path`` is absolute (``/dicomweb/...``).  The body is returned as
        received: nothing is inflated.
        """
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            body = response.read()
            return Response(response.status, response.headers, body)
        finally:
            conn.close()

    def error_log(self) -> str:
        path = self.prefix / "logs" / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="session")
def source_files() -> dict[str, Path]:
    return {name: Path(str(get_testdata_file(name))) for name in SOURCE_NAMES}


@pytest.fixture(scope="session")
def source_datasets(source_files: dict[str, Path]) -> dict[str, pydicom.Dataset]:
    return {name: pydicom.dcmread(path) for name, path in source_files.items()}


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory, source_files: dict[str, Path]) -> Path:
    root = tmp_path_factory.mktemp("archive")
    result = Converter(root, ConvertOptions(workers=1)).convert(
        [str(p) for p in source_files.values()]
    )
    assert result.ok, result.to_json()
    assert result.counts["converted"] == len(source_files), result.to_json()
    return root


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the nginx we started: TERM the master, KILL it and its workers if stuck."""
    if process.poll() is not None:
        return
    workers = _children(process.pid)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)


@contextlib.contextmanager
def run_nginx(prefix: Path, conf: Callable[[int], str]) -> Iterator[int]:
    """nginx in the foreground with the configuration ``conf(port)``, listening on
    a free loopback port; yields the port.

    nginx must be told its port: started again on another when that one was
    taken first (:func:`tests.ports.on_a_free_port`).  Its files are in
    ``prefix``: ``nginx.conf``, ``nginx.out`` (what it says), ``logs/error.log``
    (where the configuration should send its error log), each of the last start.
    """
    binary = find_nginx()
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    (prefix / "temp").mkdir(exist_ok=True)
    said_in = (prefix / "nginx.out", prefix / "logs" / "error.log")

    def said() -> str:
        return "".join(path.read_text(errors="replace") for path in said_in if path.exists())

    @contextlib.contextmanager
    def start(port: int) -> Iterator[int]:
        path = prefix / "nginx.conf"
        path.write_text(conf(port))
        command = [binary, "-p", f"{prefix}/", "-c", str(path)]
        checked = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, f"nginx -t rejects {path}:\n{checked.stderr}"
        for log in said_in:  # what this start says only
            log.write_bytes(b"")
        with open(prefix / "nginx.out", "ab") as output:
            process = subprocess.Popen(
                [*command, "-g", "daemon off;"],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            ports.wait_until_listening(process, port, said)
            yield port
        finally:
            _stop(process)

    with ports.on_a_free_port(start) as port:
        yield port


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory, archive: Path) -> Iterator[NginxServer]:
    prefix = tmp_path_factory.mktemp("nginx")
    template = DEPLOY_CONF.read_text()

    def conf(port: int) -> str:
        values: dict[str, str | None] = {
            # As root the workers would otherwise drop to nobody, which can read
            # neither pytest's private (0700) temporary folders nor the archive's
            # 0600 files (see test_served_files_are_readable_by_other_users).
            "user": "root" if os.geteuid() == 0 else None,
            "pid": _quoted(prefix / "nginx.pid"),
            "error_log": f"{_quoted(prefix / 'logs' / 'error.log')} info",
            "access_log": _quoted(prefix / "logs" / "access.log"),
            **{f"{name}_temp_path": _quoted(prefix / "temp" / name) for name in TEMP_PATHS},
            "listen": f"127.0.0.1:{port}",
            "root": _quoted(archive),
        }
        return render_conf(template, values)

    with run_nginx(prefix, conf) as port:
        server = NginxServer(port=port, archive=archive, prefix=prefix, conf=prefix / "nginx.conf")
        yield server
    serious = [
        line
        for line in server.error_log().splitlines()
        if re.search(r"\[(emerg|alert|crit)\]", line)
    ]
    assert not serious, "nginx logged serious errors:\n" + "\n".join(serious)
