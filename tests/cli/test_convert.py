from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file

from dicomweb_archive.cli.main import cli


def test_convert_summary_and_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    archive = tmp_path / "archive"
    ok = runner.invoke(
        cli, ["convert", get_testdata_file("CT_small.dcm"), "-o", str(archive), "-w", "1"]
    )
    assert ok.exit_code == 0, ok.output
    assert "1 converted" in ok.output and "1 studies" in ok.output

    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"hello")
    result = runner.invoke(
        cli,
        [
            "convert",
            str(bad),
            get_testdata_file("CT_small.dcm"),
            "-o",
            str(archive),
            "--json",
            "-w",
            "1",
        ],
    )
    assert result.exit_code == 1
    summary = orjson.loads(result.stdout)
    assert summary["unchanged"] == 1 and summary["failed"] == 1
    assert summary["failures"] == [
        {"input": str(bad), "reason": "not a DICOM file (no 'DICM' prefix and no dataset)"}
    ]
    failure_lines = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert failure_lines == [f"failed: {bad}: not a DICOM file (no 'DICM' prefix and no dataset)"]


def test_option_mismatch_is_one_line_and_exit_1(tmp_path: Path) -> None:
    runner = CliRunner()
    archive = tmp_path / "archive"
    source = get_testdata_file("MR_small.dcm")
    assert runner.invoke(cli, ["convert", source, "-o", str(archive), "-w", "1"]).exit_code == 0
    result = runner.invoke(cli, ["convert", source, "-o", str(archive), "--frames", "raw"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: ")
    assert "frames: archive has 'multipart', asked for 'raw'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["convert", "-o", str(tmp_path)]).exit_code == 2
    assert (
        runner.invoke(cli, ["convert", "x", "-o", str(tmp_path), "--workers", "0"]).exit_code == 2
    )


def test_a_url_without_a_store_is_refused_not_made_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli, ["convert", get_testdata_file("CT_small.dcm"), "-o", "https://host/archive"]
    )
    assert result.exit_code == 2
    assert "https:// archives are not supported" in result.stderr
    assert list(tmp_path.iterdir()) == []
