from __future__ import annotations

import io
from pathlib import Path

from click.testing import CliRunner
from pydicom.data import get_testdata_file

from dicomweb_archive.cli.console import plain_console
from dicomweb_archive.cli.main import cli

#: Markup and an emoji code, as a file or folder name may hold them.
NAME = "x[bold]y:smile:[red]z"


def test_text_prints_as_given() -> None:
    console = plain_console()
    console.file = io.StringIO()
    console.print(NAME)
    assert console.file.getvalue() == f"{NAME}\n"


def test_names_in_the_summary_and_failures_print_as_given(tmp_path: Path) -> None:
    folder = tmp_path / NAME
    folder.mkdir()
    bad = folder / f"{NAME}.dcm"
    bad.write_bytes(b"hello")
    archive = folder / "archive"
    result = CliRunner().invoke(
        cli, ["convert", str(bad), get_testdata_file("CT_small.dcm"), "-o", str(archive), "-w", "1"]
    )
    assert result.exit_code == 1
    assert f"failed: {bad}: not a DICOM file" in result.stderr
    assert result.stdout.rstrip().endswith(f"-> {archive}")
