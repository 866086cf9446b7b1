"""``dwa push``: a summary, JSON, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner
from pydicom.data import get_testdata_file

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.cli.main import cli


def test_push_into_a_bucket_then_nothing_to_send(s3_url: str, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    assert (
        Converter(archive, ConvertOptions(workers=1))
        .convert([str(get_testdata_file("CT_small.dcm"))])
        .ok
    )
    runner = CliRunner()
    first = runner.invoke(cli, ["push", str(archive), s3_url])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("1 studies: ") and f"-> {s3_url}" in first.output
    again = runner.invoke(cli, ["push", str(archive), s3_url, "--json"])
    assert again.exit_code == 0, again.output
    summary = orjson.loads(again.stdout)
    assert summary["written"] == 0 and summary["unchanged"] > 0 and summary["studies"] == 1


def test_push_refuses_itself_and_a_missing_archive(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    assert Converter(archive, ConvertOptions(workers=1)).convert([]).ok
    runner = CliRunner()
    itself = runner.invoke(cli, ["push", str(archive), str(archive)])
    assert itself.exit_code == 2 and "cannot be pushed into itself" in itself.stderr
    missing = runner.invoke(cli, ["push", str(tmp_path / "none"), "s3://bucket/x"])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
