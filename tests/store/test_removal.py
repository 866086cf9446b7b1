"""Deleting studies, series and instances: files, documents, index, bulk data, packed
studies, and a deletion killed at random points finished by the next run."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.store import registry
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.base import instances_of
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import Level, QidoIndex, Query
from dicomweb_archive.store.packing import pack_study
from dicomweb_archive.store.removal import DELETING, Target, delete, finish_deletions
from dicomweb_archive.types import InstanceKey
from tests.conftest import kill_then_finish, snapshot, write_instance

DWA = [sys.executable, "-m", "dicomweb_archive.cli"]


def _archive(tmp_path: Path, name: str, layout: str) -> tuple[Path, list[InstanceKey]]:
    """Two series of three instances each, one series' instances sharing a bulk value."""
    study = "1.2.826.0.1.3680043.8.498.1"
    series = ["1.2.826.0.1.3680043.8.498.2", "1.2.826.0.1.3680043.8.498.3"]
    sources = []
    for s, uid in enumerate(series):
        for n in range(3):
            sources.append(
                write_instance(
                    tmp_path / "in",
                    study=study,
                    series=uid,
                    sop=f"1.2.826.0.1.3680043.8.498.{10 * s + n + 10}",
                    instance_number=n + 1,
                    private_bytes=300 if s == 0 else 0,
                )
            )
    root = tmp_path / name
    assert Converter(root, ConvertOptions(workers=1)).convert([str(p) for p in sources]).ok
    with open_archive(root) as archive:
        Catalog(archive).rebuild_index()
        keys = instances_of(archive, study)
        if layout == "zips":
            pack_study(archive, study, remove=True)
    return root, keys


def _rows(archive: Archive, level: Level, study: str | None = None) -> int:
    with QidoIndex(archive) as index:
        return len(index.search(level, Query(study=study)))


@pytest.mark.parametrize("layout", ["folders", "zips"])
def test_instance_series_then_study(tmp_path: Path, layout: str) -> None:
    root, keys = _archive(tmp_path, "archive", layout)
    study = keys[0].study_instance_uid
    archive = open_archive(root)
    bulk = root / paths.study_dir(study) / "bulkdata"

    done = delete(archive, Target(*keys[0]))
    assert done.instances == [keys[0]] and not done.study_removed
    assert done.bulk_data == 0  # the bulk value is still the other two instances'
    assert archive.is_packed(study) == (layout == "zips")
    assert not archive.exists(paths.instance_dir(*keys[0]))
    assert registry.registered(archive.store, keys[0].sop_instance_uid) is None
    assert _rows(archive, Level.INSTANCE, study) == 5
    rows = archive.read_json_gz(paths.instances_index(study, keys[0].series_instance_uid))
    assert len(rows) == 2
    [row] = archive.read_json_gz(paths.study_row(study))
    assert row["00201208"]["Value"] == [5]  # Number of Study Related Instances

    done = delete(archive, Target(study, keys[0].series_instance_uid))
    assert len(done.instances) == 2 and done.bulk_data == 1  # its last users gone
    assert not archive.exists(paths.series_dir(study, keys[0].series_instance_uid))
    if layout == "folders":
        assert not any(p.is_file() for p in bulk.rglob("*"))
    assert _rows(archive, Level.SERIES, study) == 1
    with pytest.raises(ResourceNotFoundError, match="not in the archive"):
        delete(archive, Target(study, keys[0].series_instance_uid))

    done = delete(archive, Target(study))
    assert done.study_removed and len(done.instances) == 3
    assert not archive.has_study(study)
    assert archive.read_json_gz(paths.STUDIES_INDEX) == []
    assert _rows(archive, Level.STUDY) == _rows(archive, Level.INSTANCE) == 0
    assert not list((root / registry.REGISTRY).iterdir())
    assert not list((root / DELETING).iterdir())


def test_the_last_instance_takes_its_study(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    study, series = generate_uid(), generate_uid()
    source = write_instance(tmp_path / "in", study=study, series=series)
    assert Converter(root, ConvertOptions(workers=1)).convert([str(source)]).ok
    with open_archive(root) as archive:
        [key] = instances_of(archive, study)
        assert delete(archive, Target(*key)).study_removed
        assert not archive.has_study(study)
        assert archive.read_json_gz(paths.STUDIES_INDEX) == []


def _served(root: Path) -> dict[str, bytes]:
    return {name: data for name, (_, data) in snapshot(root).items()}


@pytest.mark.parametrize(("seed", "layout"), [(1, "folders"), (2, "zips"), (3, "folders")])
def test_a_killed_deletion_is_finished_by_the_next_run(
    tmp_path: Path, seed: int, layout: str
) -> None:
    study, series = generate_uid(), generate_uid()
    sources = [
        str(write_instance(tmp_path / "in", study=study, series=series, instance_number=n))
        for n in range(1, 121)
    ]
    kept = write_instance(tmp_path / "kept", study=study, series=generate_uid())
    roots = []
    for name in ("reference", "archive"):
        root = tmp_path / name
        assert Converter(root, ConvertOptions(workers=1)).convert([*sources, str(kept)]).ok
        with open_archive(root) as archive:
            Catalog(archive).rebuild_index()
            if layout == "zips":
                pack_study(archive, study, remove=True)
        roots.append(root)
    reference, root = roots
    started = time.perf_counter()
    with open_archive(reference) as archive:
        delete(archive, Target(study, series))
    took = time.perf_counter() - started
    journal = root / DELETING
    command = [*DWA, "delete", str(root), "--study", study, "--series", series]
    kill_then_finish(
        command, journal, seed, lambda _: finish_deletions(open_archive(root)), within=took
    )
    assert _served(root) == _served(reference)
    with open_archive(root) as archive:
        assert _rows(archive, Level.INSTANCE) == 1
