from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.cli.main import cli
from dicomweb_archive.server.app import OPTIONS_VARIABLE
from tests.server.live import wait_until_serving

MULTIPART = 'multipart/related; type="application/dicom"; boundary=b'


def _serve(monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str]) -> Any:
    started: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: started.update(app=app, **kwargs))
    result = CliRunner().invoke(cli, ["serve", *args], env=env)
    assert result.exit_code == 0, result.output
    return started["app"]


def test_write_token_and_upload_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "archive"
    assert Converter(archive, ConvertOptions(workers=1)).convert([]).ok
    ct = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    body = b"--b\r\n\r\n" + ct + b"\r\n--b--\r\n"
    app = _serve(
        monkeypatch, [str(archive), "--max-upload-size", "1M"], {"DWA_WRITE_TOKEN": "from-env"}
    )
    with TestClient(app) as client:
        headers = {"Content-Type": MULTIPART}
        assert client.post("/dicomweb/studies", content=body, headers=headers).status_code == 401
        headers["Authorization"] = "Bearer from-env"
        assert client.post("/dicomweb/studies", content=body, headers=headers).status_code == 200
        big = b"--b\r\n\r\n" + bytes(1024 * 1024) + b"\r\n--b--\r\n"
        assert client.post("/dicomweb/studies", content=big, headers=headers).status_code == 413

    app = _serve(monkeypatch, [str(archive), "--max-upload-size", "0"], {"DWA_WRITE_TOKEN": ""})
    with TestClient(app) as client:
        response = client.post(
            "/dicomweb/studies", content=body, headers={"Content-Type": MULTIPART}
        )
        assert response.status_code == 200


def test_workers_have_time_to_start_on_a_busy_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn kills a worker that is not serving within its health-check timeout."""
    started: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: started.update(app=app, **kwargs))
    monkeypatch.delenv(OPTIONS_VARIABLE, raising=False)  # set for the workers: restored after
    result = CliRunner().invoke(cli, ["serve", str(tmp_path / "archive"), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert started["workers"] == 2
    assert started["timeout_worker_healthcheck"] >= 60


def test_bad_upload_size(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", str(tmp_path), "--max-upload-size", "lots"])
    assert result.exit_code == 2
    assert "is not a size" in result.output


@pytest.mark.parametrize("workers", [1, 2])
def test_served_by_the_real_command(tmp_path: Path, workers: int) -> None:
    """`dwa serve` as users run it: CORS origins, access log on standard error.

    With ``--workers 2`` the same answers come from two processes sharing the
    port, each one configured from the command line through the environment.
    """
    archive = tmp_path / "archive"
    assert (
        Converter(archive, ConvertOptions(workers=1))
        .convert([get_testdata_file("CT_small.dcm")])
        .ok
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "dicomweb_archive.cli", "serve", str(archive)]
    command += ["--port", str(port), "--cors-origin", "http://viewer.example"]
    command += ["--workers", str(workers)]
    log = tmp_path / "stderr.log"
    with open(log, "w+b") as stderr:
        process = subprocess.Popen(command, stderr=stderr)
        try:
            url = f"http://127.0.0.1:{port}/dicomweb/studies"
            answer = wait_until_serving(url, process, stderr, Origin="http://viewer.example")
            assert answer.status_code == 200
            assert answer.headers["access-control-allow-origin"] == "http://viewer.example"
            other = httpx.get(url, headers={"Origin": "http://elsewhere.example"})
            assert "access-control-allow-origin" not in other.headers
        finally:
            process.terminate()
            process.wait(timeout=20)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert [(e["method"], e["path"], e["status"]) for e in lines] == [
        ("GET", "/dicomweb/studies", 200)
    ] * 2
    assert all(e["bytes"] > 0 and e["ms"] >= 0 for e in lines)
