"""Correcting attributes in place: metadata rewritten, frames and bulk data untouched,
exported P10 with the new values, the change recorded; over folders and packed
studies; a correction killed at random points finished by the next run."""

from __future__ import annotations

import gzip
import io
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.export.p10 import export_instance
from dicomweb_archive.model import paths
from dicomweb_archive.model.corrections import parse_assignment
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.base import instances_of
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.correction import CORRECTING, correct, finish_corrections
from dicomweb_archive.store.index import Level, QidoIndex, Query
from dicomweb_archive.store.packing import pack_study
from dicomweb_archive.store.removal import Target
from dicomweb_archive.types import InstanceKey
from tests.conftest import kill_then_finish, snapshot, write_instance

DWA = [sys.executable, "-m", "dicomweb_archive.cli"]
NEW_NAME = [parse_assignment("PatientName=New^Name"), parse_assignment("PatientID=NEW-1")]


def _sources(tmp_path: Path, count: int = 4) -> tuple[str, list[Path]]:
    """A study of two series, each instance of two frames with a private bulk value."""
    study, series = generate_uid(), [generate_uid(), generate_uid()]
    sources = [
        write_instance(
            tmp_path / "in",
            study=study,
            series=series[n % 2],
            instance_number=n + 1,
            frames=2,
            private_bytes=300,
        )
        for n in range(count)
    ]
    return study, sources


def _convert(sources: list[Path], root: Path, layout: str) -> None:
    assert Converter(root, ConvertOptions(workers=1)).convert([str(p) for p in sources]).ok
    with open_archive(root) as archive:
        Catalog(archive).rebuild_index()
        if layout == "zips":
            for study in archive.study_uids():
                pack_study(archive, study, remove=True)


def _archive(tmp_path: Path, layout: str) -> tuple[Path, str, list[Path]]:
    study, sources = _sources(tmp_path)
    _convert(sources, tmp_path / "archive", layout)
    return tmp_path / "archive", study, sources


def _untouched(root: Path, archive: Archive, study: str) -> dict[str, Any]:
    """Every frame and bulk data file: bytes, and for a folder its mtime and inode."""
    found: dict[str, Any] = {}
    packed = archive.study_zip(study)
    every = root.rglob("*")
    names = packed.names() if packed else [str(p.relative_to(root)) for p in every if p.is_file()]
    for name in names:
        if "/frames/" in name or "/bulkdata/" in name:
            data = archive.read(name)
            if packed is None:
                info = (root / name).stat()
                found[name] = (data, info.st_mtime_ns, info.st_ino)
            else:
                found[name] = data
    assert len(found) > 8
    return found


def _studies_named(archive: Archive, name: str) -> list[str]:
    with QidoIndex(archive) as index:
        rows = index.search(Level.STUDY, Query(match=[("00100010", "PN", name)]))
    return [r["0020000D"]["Value"][0] for r in rows]


@pytest.mark.parametrize("layout", ["folders", "zips"])
def test_an_update_rewrites_metadata_only(tmp_path: Path, layout: str) -> None:
    root, study, sources = _archive(tmp_path, layout)
    archive = open_archive(root)
    before = _untouched(root, archive, study)
    done = correct(archive, Target(study), NEW_NAME, by="tester")
    assert (len(done.instances), done.unchanged) == (4, 0)
    assert _untouched(root, archive, study) == before
    assert archive.is_packed(study) == (layout == "zips")
    key = done.instances[0]
    [meta] = archive.read_json_gz(paths.instance_metadata(*key))
    assert meta["00100010"]["Value"] == [{"Alphabetic": "New^Name"}]
    [record] = archive.read_json_gz(paths.instance_info(*key))["changes"]
    assert record["by"] == "tester" and record["date"].endswith("+00:00")
    assert [(a["keyword"], a["old"]["Value"], a["new"]["Value"]) for a in record["attributes"]] == [
        ("PatientName", [{"Alphabetic": "Doe^Jane"}], [{"Alphabetic": "New^Name"}]),
        ("PatientID", ["PID-1"], ["NEW-1"]),
    ]
    exported = pydicom.dcmread(io.BytesIO(export_instance(archive, *key)))
    source = pydicom.dcmread(next(p for p in sources if p.stem == key.sop_instance_uid))
    assert (exported.PatientName, exported.PatientID) == ("New^Name", "NEW-1")
    assert exported.PixelData == source.PixelData
    assert exported[0x00111001].value == source[0x00111001].value
    assert _studies_named(archive, "New^Name") == [study]
    assert _studies_named(archive, "Doe^Jane") == []
    [row] = archive.read_json_gz(paths.STUDIES_INDEX)
    assert row["00100020"]["Value"] == ["NEW-1"]

    again = correct(archive, Target(study), NEW_NAME, by="someone else")
    assert (again.instances, again.unchanged) == ([], 4)
    assert len(archive.read_json_gz(paths.instance_info(*key))["changes"]) == 1
    assert not list((root / CORRECTING).iterdir())


def test_a_series_or_an_instance_only(tmp_path: Path) -> None:
    root, study, _ = _archive(tmp_path, "folders")
    archive = open_archive(root)
    keys = instances_of(archive, study)
    series = keys[0].series_instance_uid
    done = correct(archive, Target(study, series), [parse_assignment("SeriesNumber=9")], by="t")
    assert {k.series_instance_uid for k in done.instances} == {series}
    assert len(done.instances) == 2
    other = next(k for k in keys if k.series_instance_uid != series)
    done = correct(archive, Target(*other), [parse_assignment("PatientName=Only^One")], by="t")
    assert done.instances == [other]
    with pytest.raises(ResourceNotFoundError):
        correct(archive, Target(study, series, "1.2.3"), NEW_NAME, by="t")


def _without_dates(root: Path) -> dict[str, Any]:
    """The served files, the change records' dates left out (each run has its own)."""
    files: dict[str, Any] = {}
    for name, (_, data) in snapshot(root).items():
        if name.endswith(paths.INFO):
            info = orjson.loads(gzip.decompress(data))
            for record in info.get("changes", []):
                record.pop("date")
            files[name] = info
        elif name.endswith(".zip"):
            with open_archive(root) as archive:
                study = name.removeprefix("studies/").removesuffix(".zip")
                packed = archive.study_zip(study)
                assert packed is not None
                for entry in packed.names():
                    files[entry] = packed.read(entry)
                    if entry.endswith(paths.INFO):
                        info = orjson.loads(gzip.decompress(files[entry]))
                        for record in info.get("changes", []):
                            record.pop("date")
                        files[entry] = info
        else:
            files[name] = data
    return files


@pytest.mark.parametrize(("seed", "layout"), [(1, "folders"), (2, "zips"), (3, "folders")])
def test_a_killed_update_is_finished_by_the_next_run(
    tmp_path: Path, seed: int, layout: str
) -> None:
    study, sources = _sources(tmp_path, 120)
    reference, root = tmp_path / "reference", tmp_path / "archive"
    for folder in (reference, root):
        _convert(sources, folder, layout)
    started = time.perf_counter()
    with open_archive(reference) as archive:
        correct(archive, Target(study), NEW_NAME, by="tester")
    took = time.perf_counter() - started
    journal = root / CORRECTING
    command = [*DWA, "update", str(root), "--study", study, "--by", "tester"]
    command += ["--set", "PatientName=New^Name", "--set", "PatientID=NEW-1"]
    kill_then_finish(
        command, journal, seed, lambda _: finish_corrections(open_archive(root)), within=took
    )
    assert _without_dates(root) == _without_dates(reference)
    with open_archive(root) as archive:
        assert _studies_named(archive, "New^Name") == [study]
        keys: list[InstanceKey] = instances_of(archive, study)
        dates = {archive.read_json_gz(paths.instance_info(*k))["changes"][0]["date"] for k in keys}
        assert len(dates) == 1  # one correction, one record, whoever finished it
