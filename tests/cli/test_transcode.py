from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner, Result
from pydicom.data import get_testdata_file

from dicomweb_archive.cli.main import cli
from dicomweb_archive.model import multipart, paths
from tests.conftest import read_json_gz, snapshot


def _convert(archive: Path, *names: str, extra: tuple[str, ...] = ()) -> Result:
    files = [get_testdata_file(name) for name in names]
    return CliRunner().invoke(cli, ["convert", *files, "-o", str(archive), "-w", "1", *extra])


def test_transcode_summary_json_and_idempotency(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    _convert(archive, "CT_small.dcm", "liver.dcm")
    runner = CliRunner()
    first = runner.invoke(cli, ["transcode", str(archive), "-w", "1"])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("HTJ2K: 1 transcoded, 0 unchanged, 1 skipped, 0 failed")
    assert "skipped: " in first.output and "Bits Allocated 1" in first.output
    before = snapshot(archive)
    again = runner.invoke(cli, ["transcode", str(archive), "--json", "-w", "1"])
    assert again.exit_code == 0
    summary = orjson.loads(again.stdout)
    assert (summary["transcoded"], summary["unchanged"], summary["skipped"]) == (0, 1, 1)
    assert snapshot(archive) == before


def test_failure_is_one_line_and_exit_1(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    _convert(archive, "JPEG2000.dcm")
    [frame] = list(archive.glob("studies/*/series/*/instances/*/frames/1"))
    headers, payload = multipart.unwrap(frame.read_bytes())
    frame.write_bytes(frame.read_bytes().replace(payload, b"\xff\x4f\xff\x51" + b"\0" * 60))
    result = CliRunner().invoke(cli, ["transcode", str(archive), "--mode", "primary", "-q"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert len(lines) == 1 and "frame 1 cannot be decoded" in lines[0]


def test_usage_and_archive_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["transcode", str(tmp_path), "--lossy", "0"]).exit_code == 2
    assert runner.invoke(cli, ["transcode", str(tmp_path), "--mode", "other"]).exit_code == 2
    result = runner.invoke(cli, ["transcode", str(tmp_path)])
    assert result.exit_code == 1 and result.stderr.startswith("error: ")


def test_convert_with_htj2k(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    result = _convert(archive, "MR_small.dcm", extra=("--htj2k", "primary", "--json"))
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert summary["converted"] == 1 and summary["htj2k"]["transcoded"] == 1
    [meta_path] = list(archive.glob("studies/*/series/*/instances/*/metadata.gz"))
    [meta] = read_json_gz(meta_path)
    assert meta["00083002"]["Value"] == ["1.2.840.10008.1.2.4.202"]
    before = snapshot(archive)
    again = _convert(archive, "MR_small.dcm", extra=("--htj2k", "primary"))
    assert again.exit_code == 0
    assert "0 converted, 0 updated, 1 unchanged" in again.output
    assert "HTJ2K: 0 transcoded, 1 unchanged" in again.output
    assert snapshot(archive) == before

    alternate = tmp_path / "alternate"
    assert _convert(alternate, "MR_small.dcm", extra=("--htj2k", "alternate")).exit_code == 0
    study, series, sop = (
        meta_path.parent.parts[-5],
        meta_path.parent.parts[-3],
        meta_path.parent.parts[-1],
    )
    assert (alternate / paths.htj2k_frame_path(study, series, sop, 1)).is_file()


def test_lossy_on_primary_frames_says_why_and_exits_1(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    _convert(archive, "CT_small.dcm", extra=("--htj2k", "primary"))
    before = snapshot(archive)
    done = CliRunner().invoke(cli, ["transcode", str(archive), "--lossy", "50", "-w", "1"])
    assert done.exit_code == 1, done.output
    assert "1 skipped" in done.output
    assert "HTJ2K (1.2.840.10008.1.2.4.202) already (--mode primary)" in done.output
    assert snapshot(archive) == before


def test_json_names_the_studies_transcoded(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    _convert(archive, "CT_small.dcm")
    done = CliRunner().invoke(cli, ["transcode", str(archive), "--json", "-w", "1"])
    assert done.exit_code == 0, done.output
    [study] = [p.name for p in (archive / "studies").iterdir() if p.is_dir()]
    assert orjson.loads(done.stdout)["studies"] == [study]
    again = CliRunner().invoke(cli, ["transcode", str(archive), "--json", "-w", "1"])
    assert orjson.loads(again.stdout)["studies"] == []
