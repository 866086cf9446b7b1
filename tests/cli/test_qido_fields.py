"""``--qido-fields``: attributes added to the QIDO-RS documents and index, kept in
the manifest, changed for an existing archive by ``dwa index``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pydicom
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file

from dicomweb_archive.cli.main import cli
from dicomweb_archive.cli.serve import _check_qido_fields
from dicomweb_archive.errors import ArchiveOptionsMismatchError
from dicomweb_archive.model import paths
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import Level, QidoIndex, Query
from dicomweb_archive.store.manifest import read_options
from dicomweb_archive.store.packing import pack_study
from tests.server.live import live_server

SLICE_THICKNESS, KVP, PATIENT_WEIGHT = "00180050", "00180060", "00101030"


def _run(*arguments: str) -> str:
    result = CliRunner().invoke(cli, list(arguments))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def ct() -> tuple[str, pydicom.Dataset]:
    path = str(get_testdata_file("CT_small.dcm"))
    return path, pydicom.dcmread(path)


def _rows(archive: Path, relative: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(gzip.decompress((archive / relative).read_bytes()))
    return rows


def _documents(archive: Path, ds: pydicom.Dataset) -> list[list[dict[str, object]]]:
    return [
        _rows(archive, paths.STUDIES_INDEX),
        _rows(archive, paths.series_index(ds.StudyInstanceUID)),
        _rows(archive, paths.instances_index(ds.StudyInstanceUID, ds.SeriesInstanceUID)),
    ]


def test_convert_adds_the_fields_at_every_level(
    tmp_path: Path, ct: tuple[str, pydicom.Dataset]
) -> None:
    source, ds = ct
    archive = tmp_path / "archive"
    _run(
        "convert",
        source,
        "-o",
        str(archive),
        "-w",
        "1",
        "--qido-fields",
        "SliceThickness, 00180060",
    )
    assert read_options(open_archive(archive)).qido_fields == (SLICE_THICKNESS, KVP)
    for rows in _documents(archive, ds):
        assert rows[0][SLICE_THICKNESS] == {"vr": "DS", "Value": [float(ds.SliceThickness)]}
        assert rows[0][KVP] == {"vr": "DS", "Value": [float(ds.KVP)]}
    # In the index: returned without includefield, and matched.
    with Catalog(open_archive(archive)).open_index() as index:
        for level in Level:
            [row] = index.search(level, Query(match=[(KVP, "DS", str(ds.KVP))]))
            assert SLICE_THICKNESS in row
            assert index.search(level, Query(match=[(KVP, "DS", "1")])) == []
    # A later conversion without the option keeps the archive's fields.
    mr = str(get_testdata_file("MR_small.dcm"))
    _run("convert", mr, "-o", str(archive), "-w", "1")
    assert read_options(open_archive(archive)).qido_fields == (SLICE_THICKNESS, KVP)
    studies = _rows(archive, paths.STUDIES_INDEX)
    assert all(SLICE_THICKNESS in row for row in studies) and len(studies) == 2


def test_other_fields_for_an_archive_are_refused(
    tmp_path: Path, ct: tuple[str, pydicom.Dataset]
) -> None:
    source, _ = ct
    archive = tmp_path / "archive"
    _run("convert", source, "-o", str(archive), "-w", "1", "--qido-fields", "KVP")
    result = CliRunner().invoke(
        cli, ["convert", source, "-o", str(archive), "--qido-fields", "PatientWeight"]
    )
    assert result.exit_code != 0
    assert "dwa index --qido-fields" in result.output
    bad = CliRunner().invoke(cli, ["convert", source, "-o", str(archive), "--qido-fields", "Nope"])
    assert bad.exit_code == 2 and "neither an attribute keyword nor a tag" in bad.output


def test_index_changes_the_fields_of_an_archive(
    tmp_path: Path, ct: tuple[str, pydicom.Dataset]
) -> None:
    source, ds = ct
    archive = tmp_path / "archive"
    _run("convert", source, str(get_testdata_file("MR_small.dcm")), "-o", str(archive), "-w", "1")
    assert all(PATIENT_WEIGHT not in rows[0] for rows in _documents(archive, ds))
    # One study packed: it is refreshed inside its ZIP, and stays packed.
    opened = open_archive(archive)
    pack_study(opened, ds.StudyInstanceUID, remove=True)
    output = _run("index", str(archive), "--qido-fields", "PatientWeight")
    assert "indexed 2 studies" in output
    assert read_options(opened).qido_fields == (PATIENT_WEIGHT,)
    assert opened.is_packed(ds.StudyInstanceUID)
    assert not (archive / paths.study_dir(ds.StudyInstanceUID)).exists()
    row = opened.read_json_gz(paths.study_row(ds.StudyInstanceUID))[0]
    assert row[PATIENT_WEIGHT]["vr"] == "DS"
    with QidoIndex(opened) as index:
        rows = index.search(Level.SERIES, Query())
        assert all(PATIENT_WEIGHT in r for r in rows) and len(rows) == 2
    # And removed again.
    _run("index", str(archive), "--qido-fields", "")
    assert read_options(opened).qido_fields == ()
    assert PATIENT_WEIGHT not in opened.read_json_gz(paths.study_row(ds.StudyInstanceUID))[0]
    assert "qidoFields" not in json.loads((archive / paths.MANIFEST).read_text())


def test_served_fields(tmp_path: Path, ct: tuple[str, pydicom.Dataset]) -> None:
    source, ds = ct
    archive = tmp_path / "archive"
    _run("convert", source, "-o", str(archive), "-w", "1", "--qido-fields", "KVP")
    with live_server(create_app(archive)) as url:
        for level in ("studies", "series", "instances"):
            found = httpx.get(f"{url}/{level}", params={"KVP": str(ds.KVP)})
            assert found.status_code == 200
            [row] = found.json()
            assert row[KVP]["Value"] == [float(ds.KVP)]
            assert httpx.get(f"{url}/{level}", params={"KVP": "1"}).json() == []


def test_serve_checks_or_sets_the_fields(tmp_path: Path, ct: tuple[str, pydicom.Dataset]) -> None:
    source, _ = ct
    fresh = tmp_path / "fresh"
    _check_qido_fields(str(fresh), (KVP,))
    assert read_options(open_archive(fresh)).qido_fields == (KVP,)
    archive = tmp_path / "archive"
    _run("convert", source, "-o", str(archive), "-w", "1", "--qido-fields", "KVP")
    _check_qido_fields(str(archive), (KVP,))
    with pytest.raises(ArchiveOptionsMismatchError, match="qidoFields"):
        _check_qido_fields(str(archive), (PATIENT_WEIGHT,))
