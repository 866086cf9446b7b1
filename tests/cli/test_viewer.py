"""``dwa viewer install``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dicomweb_archive.cli.main import cli


def test_install_reports_where_and_how_to_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "cache" / "package" / "dist"
    dist.mkdir(parents=True)
    (dist / "index.html").write_text("x")
    (tmp_path / "cache" / ".installed-9.9.9").touch()
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm: nothing is fetched
    result = CliRunner().invoke(
        cli, ["viewer", "install", "--cache", str(tmp_path / "cache"), "--version", "9.9.9"]
    )
    assert result.exit_code == 0, result.output
    assert str(dist) in result.output
    assert f"--viewer {tmp_path / 'cache'}" in result.output


def test_without_npm_it_exits_1_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(cli, ["viewer", "install", "--cache", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "npm is not installed" in result.output
