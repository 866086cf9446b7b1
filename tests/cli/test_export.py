"""``dwa export``: files or a ZIP, packed studies read as they are, exit codes."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pydicom
from click.testing import CliRunner

from dicomweb_archive.cli.main import cli
from tests.cli.conftest import Converted


def test_export_folders_and_zips_of_packed_studies(tmp_path: Path, converted: Converted) -> None:
    runner = CliRunner()
    archive, originals = converted
    packed = runner.invoke(cli, ["pack", str(archive), "--all", "--remove"])
    assert packed.exit_code == 0, packed.output

    # Export reads packed studies as they are.
    out = tmp_path / "out"
    exported = runner.invoke(cli, ["export", str(archive), "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    assert "exported 3 instances, 0 failed" in exported.stdout
    files = sorted(out.rglob("*.dcm"))
    assert sorted(pydicom.dcmread(f).SOPInstanceUID for f in files) == sorted(
        ds.SOPInstanceUID for ds in originals
    )
    one = originals[1]
    as_zip = tmp_path / "series.zip"
    result = runner.invoke(
        cli, ["export", str(archive), "--series", one.SeriesInstanceUID, "-o", str(as_zip)]
    )
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(as_zip) as z:
        [name] = z.namelist()
        assert name.endswith(".dcm") and z.testzip() is None
        assert pydicom.dcmread(z.open(name)).SOPInstanceUID == one.SOPInstanceUID


def test_failures_are_one_line_and_exit_1(tmp_path: Path, converted: Converted) -> None:
    archive, _ = converted
    result = CliRunner().invoke(cli, ["export", str(archive), "--study", "1.2.3", "-o", "x"])
    assert result.exit_code == 1
    assert result.stderr == "error: study 1.2.3 is not in the archive\n"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert CliRunner().invoke(cli, ["export", str(tmp_path)]).exit_code == 2
