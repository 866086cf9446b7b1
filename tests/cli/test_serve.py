from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from pydicom.data import get_testdata_file
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.cli.main import cli
from dicomweb_archive.server import listening
from dicomweb_archive.server.app import OPTIONS_VARIABLE
from tests.server.live import dwa_serve

MULTIPART = 'multipart/related; type="application/dicom"; boundary=b'


def _configured(
    monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str] | None = None
) -> uvicorn.Config:
    """The configuration ``dwa serve ARGS`` runs uvicorn with (it does not serve)."""
    configs: list[uvicorn.Config] = []

    def run(config: uvicorn.Config, bound: socket.socket) -> bool:
        assert bound.getsockname()[1] == config.port
        configs.append(config)
        return True

    monkeypatch.setattr(listening, "run", run)
    result = CliRunner().invoke(cli, ["serve", *args, "--port", "0"], env=env)
    assert result.exit_code == 0, result.output
    [config] = configs
    return config


def _serve(monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str]) -> Any:
    return _configured(monkeypatch, args, env).app


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
    monkeypatch.delenv(OPTIONS_VARIABLE, raising=False)  # set for the workers: restored after
    config = _configured(monkeypatch, [str(tmp_path / "archive"), "--workers", "2"])
    assert config.workers == 2
    assert config.timeout_worker_healthcheck >= 60


def test_a_port_taken_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", str(tmp_path / "archive"), "--port", str(port)])
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_port_0_is_a_free_port_said_before_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port the kernel chose is the one printed, and the one uvicorn is told of."""
    served: list[tuple[int, tuple[str, int]]] = []

    def run(config: uvicorn.Config, bound: socket.socket) -> bool:
        served.append((config.port, bound.getsockname()))
        return True

    monkeypatch.setattr(listening, "run", run)
    archive = tmp_path / "archive"
    result = CliRunner().invoke(cli, ["serve", str(archive), "--port", "0"])
    assert result.exit_code == 0, result.output
    [(port, (host, bound_port))] = served
    assert port == bound_port != 0 and host == "127.0.0.1"
    assert result.stderr.startswith(
        f"serving {archive} at http://127.0.0.1:{port}/dicomweb\n"
        f"study browser: http://127.0.0.1:{port}/\n"
    )


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
    log = tmp_path / "stderr.log"
    options = ["--cors-origin", "http://viewer.example", "--workers", str(workers)]
    with (
        open(log, "w+b") as stderr,
        dwa_serve(archive, *options, access_log=True, log=stderr) as (root, _),
    ):
        url = f"{root}/studies"
        answer = httpx.get(url, headers={"Origin": "http://viewer.example"})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "http://viewer.example"
        other = httpx.get(url, headers={"Origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    # The first request is dwa_serve's, once the server answers.
    assert [(e["method"], e["path"], e["status"]) for e in lines] == [
        ("GET", "/dicomweb/studies", 200)
    ] * 3
    assert all(e["bytes"] > 0 and e["ms"] >= 0 for e in lines)
