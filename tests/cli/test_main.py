"""The one translation of library errors into exit codes, and usage errors."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file

from dicomweb_archive import errors
from dicomweb_archive.cli.main import CommandGroup, cli


@pytest.mark.parametrize(
    ("error", "exit_code"),
    [
        (errors.InvalidUIDError("'x' is not a valid UID"), 2),
        (errors.NotDicomError("a.txt: not a DICOM file"), 2),
        (errors.ArchiveError("/a: not a dicomweb-archive folder (no manifest)"), 1),
        (errors.ResourceNotFoundError("study 1.2 is not in the archive"), 1),
        (errors.DicomwebArchiveError("anything else"), 1),
    ],
)
def test_library_errors_are_one_line_and_their_exit_code(
    error: errors.DicomwebArchiveError, exit_code: int
) -> None:
    @click.group(cls=CommandGroup)
    def group() -> None:
        pass

    @group.command()
    def fail() -> None:
        raise error

    result = CliRunner().invoke(group, ["fail"])
    assert result.exit_code == exit_code == error.exit_code
    assert result.stderr == f"error: {error}\n"
    assert result.stdout == ""


def test_other_exceptions_are_not_swallowed() -> None:
    @click.group(cls=CommandGroup)
    def group() -> None:
        pass

    @group.command()
    def fail() -> None:
        raise RuntimeError("a bug")

    result = CliRunner().invoke(group, ["fail"])
    assert isinstance(result.exception, RuntimeError)


@pytest.mark.parametrize(
    "arguments",
    [
        ["export", "{root}", "--study", "not-a-uid", "-o", "x"],
        ["export", "{root}", "--series", "1.2.x", "-o", "x"],
        ["pack", "{root}", "--study", "1..2"],
        ["unpack", "{root}", "--study", "abc"],
        ["convert", "-o", "{root}"],
        ["nosuchcommand"],
        ["index"],
    ],
)
def test_usage_errors_and_invalid_input_exit_2(tmp_path: Path, arguments: list[str]) -> None:
    argv = [a.format(root=tmp_path) for a in arguments]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.stderr


def test_an_archive_error_ends_the_command_with_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["index", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path}: not a dicomweb-archive folder (no manifest)\n"
    source = get_testdata_file("CT_small.dcm")
    archive = str(tmp_path / "archive")
    assert CliRunner().invoke(cli, ["convert", source, "-o", archive, "-q"]).exit_code == 0
    result = CliRunner().invoke(cli, ["convert", source, "-o", archive, "--frames", "raw"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
