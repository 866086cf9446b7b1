from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file

from dicomweb_archive.cli.main import cli

SOURCES = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm")

Converted = tuple[Path, list[pydicom.Dataset]]


@pytest.fixture
def converted(tmp_path: Path) -> Converted:
    """An archive of three studies made by ``dwa convert``, and their sources."""
    archive = tmp_path / "archive"
    inputs = [get_testdata_file(name) for name in SOURCES]
    result = CliRunner().invoke(cli, ["convert", *inputs, "-o", str(archive), "-w", "1"])
    assert result.exit_code == 0, result.output
    return archive, [pydicom.dcmread(path) for path in inputs]
