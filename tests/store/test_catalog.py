"""The catalog: every derived document rebuilt from the instances, the same bytes."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions, collector
from dicomweb_archive.model import paths
from dicomweb_archive.model.aggregate import Conflict
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.base import files_under
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import Level, Query
from dicomweb_archive.store.memory import MemoryStore
from dicomweb_archive.types import InstanceKey
from tests.conftest import write_instance


@pytest.fixture
def converted(tmp_path: Path) -> tuple[Archive, list[str]]:
    studies = [generate_uid(), generate_uid()]
    for n, study in enumerate(studies):
        for series_number in (1, 2):
            write_instance(
                tmp_path / "in",
                study=study,
                series=generate_uid(),
                series_number=series_number,
                patient_id=f"P{n}",
            )
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([str(tmp_path / "in")]).ok
    return open_archive(root), studies


def _derived(archive: Archive, study: str) -> dict[str, bytes]:
    """The study's documents other than the instances' own."""
    return {
        name: archive.read(name)
        for name in files_under(archive, paths.study_dir(study))
        if "/instances/" not in name and "/bulkdata/" not in name
    }


def _instances_only(archive: Archive, study: str) -> None:
    for name in _derived(archive, study):
        archive.store.remove(name)


def _strip(archive: Archive, studies: list[str]) -> tuple[dict[str, dict[str, bytes]], bytes]:
    """Remove every derived document; returns them as they were."""
    before = {study: _derived(archive, study) for study in studies}
    study_list = archive.read(paths.STUDIES_INDEX)
    for study in studies:
        _instances_only(archive, study)
    archive.store.remove(paths.STUDIES_INDEX)
    return before, study_list


def test_refresh_rebuilds_the_same_bytes(converted: tuple[Archive, list[str]]) -> None:
    archive, studies = converted
    before, study_list = _strip(archive, studies)
    catalog = Catalog(archive)
    catalog.instances_written([InstanceKey(studies[1], "x", "y")])
    refreshed = catalog.refresh([studies[0]])
    assert refreshed.studies == sorted(studies)
    assert refreshed.conflicts == []
    assert {study: _derived(archive, study) for study in studies} == before
    assert archive.read(paths.STUDIES_INDEX) == study_list
    # Nothing pending any more: the next refresh does nothing.
    assert catalog.refresh().studies == []


def test_any_store_gives_the_same_documents(converted: tuple[Archive, list[str]]) -> None:
    archive, studies = converted
    memory = Archive(MemoryStore())
    for name in files_under(archive, "studies"):
        if "/instances/" in name or "/bulkdata/" in name:
            memory.store.write(name, archive.read(name))
    Catalog(memory).refresh(studies)
    for study in studies:
        assert _derived(memory, study) == _derived(archive, study)
    assert memory.read(paths.STUDIES_INDEX) == archive.read(paths.STUDIES_INDEX)


def test_a_study_without_instances_leaves_the_list(
    converted: tuple[Archive, list[str]],
) -> None:
    archive, studies = converted
    archive.store.remove_tree(paths.study_dir(studies[0]))
    Catalog(archive).refresh([studies[0]])
    rows = archive.read_json_gz(paths.STUDIES_INDEX)
    assert [row["0020000D"]["Value"][0] for row in rows] == [studies[1]]
    assert not archive.exists(paths.study_row(studies[0]))


def test_the_index_is_built_once_then_kept_current(
    converted: tuple[Archive, list[str]],
) -> None:
    archive, studies = converted
    catalog = Catalog(archive)
    assert not catalog.has_index()
    catalog.open_index().close()
    assert catalog.has_index()
    archive.store.remove_tree(paths.study_dir(studies[0]))
    catalog.refresh([studies[0]])
    with catalog.open_index() as index:
        found = index.search(Level.STUDY, Query())
    assert [row["0020000D"]["Value"][0] for row in found] == [studies[1]]
    assert catalog.rebuild_index() == 1


def test_moved_studies_are_listed_from_their_own_row(
    converted: tuple[Archive, list[str]],
) -> None:
    archive, studies = converted
    rows = archive.read(paths.STUDIES_INDEX)
    archive.store.remove(paths.STUDIES_INDEX)
    archive.store.write_json_gz(paths.STUDIES_INDEX, [])
    Catalog(archive).studies_moved(studies)
    assert archive.read(paths.STUDIES_INDEX) == rows


def test_deferred_studies_settle_then_flush_into_the_list(
    converted: tuple[Archive, list[str]],
) -> None:
    archive, studies = converted
    before, study_list = _strip(archive, studies)
    catalog = Catalog(archive)
    catalog.defer(studies)
    assert catalog.journal.stale() == sorted(studies)
    # A read settles one study: its documents, not the study list.
    catalog.settle_study(studies[0])
    assert _derived(archive, studies[0]) == before[studies[0]]
    assert catalog.journal.stale() == [studies[1]]
    assert not archive.exists(paths.STUDIES_INDEX)
    assert catalog.journal.unlisted() == [studies[0]]
    # The flush catches up with everything, then nothing is left to do.
    catalog.flush()
    assert {study: _derived(archive, study) for study in studies} == before
    assert archive.read(paths.STUDIES_INDEX) == study_list
    assert catalog.journal.stale() == catalog.journal.unlisted() == []


def test_a_refresh_during_a_list_update_keeps_its_marker(
    converted: tuple[Archive, list[str]],
) -> None:
    archive, studies = converted
    catalog = Catalog(archive)
    catalog.journal.mark_unlisted(studies[0])
    token = catalog.journal.token(studies[0])
    catalog.journal.mark_unlisted(studies[0])  # a refresh after the row was read
    catalog.journal.clear_unlisted(studies[0], token)
    assert catalog.journal.unlisted() == [studies[0]]


def test_a_refresh_reads_only_the_changed_instances_and_writes_the_same_bytes(
    converted: tuple[Archive, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, studies = converted
    catalog = Catalog(archive)
    catalog.open_index().close()
    catalog.refresh(studies)  # every instance read once
    series = archive.read_json_gz(paths.series_index(studies[0]))[0]["0020000E"]["Value"][0]
    write_instance(tmp_path / "more", study=studies[0], series=series, instance_number=9)
    assert Converter(archive.url, ConvertOptions(workers=1)).convert([str(tmp_path / "more")]).ok
    clean = _derived(archive, studies[0])
    _instances_only(archive, studies[0])
    read: list[str] = []
    read_bytes = archive.store.read

    def counted(path: str) -> bytes:
        read.append(path)
        return read_bytes(path)

    monkeypatch.setattr(archive.store, "read", counted)
    catalog.refresh([studies[0]])
    [metadata] = [path for path in read if path.endswith(f"/{paths.METADATA}")]
    assert "/instances/" in metadata  # the new instance's, the rest recalled
    assert _derived(archive, studies[0]) == clean
    with catalog.open_index() as index:
        incremental = [index.search(level, Query(study=studies[0])) for level in Level]
    catalog.rebuild_index()
    with catalog.open_index() as index:
        assert [index.search(level, Query(study=studies[0])) for level in Level] == incremental


def test_dwa_index_lists_the_studies_from_the_rows_it_indexed(
    converted: tuple[Archive, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, studies = converted
    catalog = Catalog(archive)
    assert catalog.rebuild_study_list() == 2
    published = archive.read(paths.STUDIES_INDEX)
    archive.store.remove(paths.STUDIES_INDEX)
    monkeypatch.setattr(catalog, "study_row", lambda study: pytest.fail("read again"))
    assert catalog.rebuild() == 2
    assert archive.read(paths.STUDIES_INDEX) == published
    with catalog.open_index() as index:
        assert sorted(
            row["0020000D"]["Value"][0] for row in index.search(Level.STUDY, Query())
        ) == sorted(studies)


def test_the_full_collections_wait_while_a_refresh_runs(
    converted: tuple[Archive, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, studies = converted
    catalog = Catalog(archive)
    thresholds: list[int] = []
    settle_batch = catalog._settle_batch

    def watched(batch: list[str], fields: tuple[str, ...]) -> list[Conflict]:
        thresholds.append(gc.get_threshold()[2])
        return settle_batch(batch, fields)

    monkeypatch.setattr(catalog, "_settle_batch", watched)
    before = gc.get_threshold()
    catalog.settle(studies)
    assert thresholds == [collector._NEVER] and gc.get_threshold() == before
