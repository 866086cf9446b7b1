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
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomweb_archive import Converter, ConvertOptions

REPO = Path(__file__).resolve().parents[2]
DEPLOY_CONF = REPO / "deploy" / "nginx.conf"
#: Real files: native CT and MR, a two-frame RLE image, a JPEG 2000 image.
SOURCE_NAMES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_rle_2frame.dcm", "JPEG2000.dcm")
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
START_TIMEOUT = 15.0


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


def _wait_until_serving(process: subprocess.Popen[bytes], server: NginxServer) -> str | None:
    """None once nginx answers; otherwise why it did not."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"nginx exited with status {process.returncode}"
        try:
            server.request("/dicomweb/studies")
            return None
        except OSError:
            time.sleep(0.05)
    return f"nginx did not answer within {START_TIMEOUT} s"


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory, archive: Path) -> Iterator[NginxServer]:
    binary = find_nginx()
    prefix = tmp_path_factory.mktemp("nginx")
    (prefix / "logs").mkdir()
    (prefix / "temp").mkdir()
    template = DEPLOY_CONF.read_text()
    failures = []
    for _attempt in range(3):  # the free port may be taken before nginx binds it
        port = _free_port()
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
        conf = prefix / "nginx.conf"
        conf.write_text(render_conf(template, values))
        command = [binary, "-p", f"{prefix}/", "-c", str(conf)]
        checked = subprocess.run([*command, "-t", "-q"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, (
            f"nginx -t rejects the rendered deploy/nginx.conf:\n{checked.stderr}"
        )
        output = open(prefix / "nginx.out", "ab")  # noqa: SIM115 - closed below
        process = subprocess.Popen(
            [*command, "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        server = NginxServer(port=port, archive=archive, prefix=prefix, conf=conf)
        problem = _wait_until_serving(process, server)
        if problem is None:
            try:
                yield server
            finally:
                _stop(process)
                output.close()
            log = server.error_log()
            serious = [
                line for line in log.splitlines() if re.search(r"\[(emerg|alert|crit)\]", line)
            ]
            assert not serious, "nginx logged serious errors:\n" + "\n".join(serious)
            return
        _stop(process)
        output.close()
        failures.append(
            f"{problem}\n--- output ---\n{(prefix / 'nginx.out').read_text(errors='replace')}"
            f"\n--- error log ---\n{server.error_log()}"
        )
        if "Address already in use" not in failures[-1]:
            break
    pytest.fail("could not start nginx:\n" + "\n\n".join(failures), pytrace=False)
