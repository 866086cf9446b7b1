"""``dwa deidentify``: a de-identified copy of an archive."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner
from pydicom.data import get_testdata_file

from dicomweb_archive.cli.main import cli


def test_deidentified_copy(tmp_path: Path) -> None:
    runner = CliRunner()
    source, copy, key = tmp_path / "source", tmp_path / "copy", tmp_path / "key"
    inputs = [get_testdata_file(n) for n in ("CT_small.dcm", "MR_small.dcm")]
    assert runner.invoke(cli, ["convert", *inputs, "-o", str(source), "-w", "1"]).exit_code == 0
    args = ["deidentify", str(source), "-o", str(copy), "--key", str(key), "-w", "1", "--json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert summary["converted"] == 2 and all(s.startswith("2.25.") for s in summary["studies"])
    direct = runner.invoke(
        cli,
        ["convert", *inputs, "-o", str(tmp_path / "direct"), "-w", "1", "--json"]
        + ["--deidentify", "basic", "--key", str(key)],
    )
    assert sorted(orjson.loads(direct.stdout)["studies"]) == sorted(summary["studies"])


def test_usage_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    source = tmp_path / "source"
    source.mkdir()
    same = runner.invoke(cli, ["deidentify", str(source), "-o", str(source), "--key", "k"])
    assert same.exit_code == 2 and "another folder than SOURCE" in same.output
    no_key = runner.invoke(cli, ["deidentify", str(source), "-o", str(tmp_path / "other")])
    assert no_key.exit_code == 2 and "--deidentify needs --key FILE" in no_key.output
