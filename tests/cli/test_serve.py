from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.cli.main import cli

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


def test_bad_upload_size(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", str(tmp_path), "--max-upload-size", "lots"])
    assert result.exit_code == 2
    assert "is not a size" in result.output
