"""``dwa index``: the QIDO-RS index rebuilt from the documents, then kept current."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file

from dicomweb_archive.cli.main import cli
from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.index import INDEX_PATH, Level, QidoIndex, Query
from dicomweb_archive.store.listing import LISTING_PATH
from dicomweb_archive.store.unlisted import UNLISTED_PATH


def _convert(archive: Path, name: str) -> None:
    result = CliRunner().invoke(
        cli, ["convert", get_testdata_file(name), "-o", str(archive), "-w", "1"]
    )
    assert result.exit_code == 0, result.output


def _studies(archive: Path) -> int:
    with QidoIndex(open_archive(archive)) as index:
        return len(index.search(Level.STUDY, Query()))


def test_index_rebuild_and_kept_current(tmp_path: Path) -> None:
    runner = CliRunner()
    archive = tmp_path / "archive"
    _convert(archive, "CT_small.dcm")
    result = runner.invoke(cli, ["index", str(archive)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("indexed 1 studies in ")
    assert result.output.endswith(f" s -> {archive}\n")
    assert (archive / INDEX_PATH).is_file()
    _convert(archive, "MR_small.dcm")
    assert _studies(archive) == 2


def test_the_index_is_derived_data(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    _convert(archive, "CT_small.dcm")
    _convert(archive, "MR_small.dcm")
    assert CliRunner().invoke(cli, ["index", str(archive)]).exit_code == 0
    (archive / INDEX_PATH).unlink()
    result = CliRunner().invoke(cli, ["index", str(archive)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("indexed 2 studies")
    assert _studies(archive) == 2


def test_not_an_archive(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["index", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path}: not a dicomweb-archive folder (no manifest)\n"
    assert CliRunner().invoke(cli, ["index", str(tmp_path / "missing")]).exit_code == 2


def test_documents_rewrites_what_an_older_archive_lacks(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    _convert(archive, "CT_small.dcm")
    [study] = open_archive(archive).study_uids()
    context = archive / "studies" / study / "bulkdata.json.gz"
    before = context.read_bytes()
    context.unlink()
    plain = CliRunner().invoke(cli, ["index", str(archive)])
    assert plain.exit_code == 0 and not context.exists()
    result = CliRunner().invoke(cli, ["index", str(archive), "--documents"])
    assert result.exit_code == 0, result.output
    assert "rewrote the documents of 1 studies" in result.output
    assert context.read_bytes() == before


def test_damaged_databases_are_made_anew_by_convert_and_index(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = tmp_path / "archive"
    _convert(archive, "CT_small.dcm")
    assert CliRunner().invoke(cli, ["index", str(archive)]).exit_code == 0
    damaged = [INDEX_PATH, LISTING_PATH, UNLISTED_PATH]
    for path in damaged:
        data = (archive / path).read_bytes()
        (archive / path).write_bytes(data[:1024] + b"\xa5" * (len(data) - 1024))
    _convert(archive, "MR_small.dcm")
    for path in damaged:
        assert f"{archive / path}: damaged" in caplog.text
    assert _studies(archive) == 2
    assert len(open_archive(archive).read_json_gz(paths.STUDIES_INDEX)) == 2
    (archive / INDEX_PATH).write_bytes(b"left so by a power failure" * 1000)
    result = CliRunner().invoke(cli, ["index", str(archive)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("indexed 2 studies")
    assert _studies(archive) == 2
