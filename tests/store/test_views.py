"""A study's view kept between refreshes: the instances the journal names read
again, the rest taken as seen, the same bytes as a refresh that reads everything."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from dicomweb_archive.convert.instance import store_instance
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.model.instance import Instance
from dicomweb_archive.p10.reader import read_instance
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import Level, Query
from dicomweb_archive.store.journal import CHANGED
from dicomweb_archive.store.recall import Recall
from dicomweb_archive.store.views import StudyView, Views
from dicomweb_archive.types import InstanceKey
from tests.conftest import write_instance
from tests.store.test_catalog import _derived


def _seen(sop: str, size: int = 10) -> tuple[str, int, list[Instance]]:
    ds = {"00080018": {"vr": "UI", "Value": [sop]}}
    return f"v-{sop}", size, [Instance.of(ds)]


def test_a_view_keeps_its_instances_as_seen() -> None:
    view = StudyView()
    for series, sop in [("1.2", "1.5"), ("1.2", "1.3"), ("1.1", "1.9"), ("1.2", "1.7")]:
        view.see(series, sop, _seen(sop))
    assert list(view.series) == ["1.2", "1.1"]
    assert [i.sop for i in view.by_series()["1.2"]] == ["1.5", "1.3", "1.7"]
    assert view.size == 40
    listed = view.by_series()["1.2"]
    again = _seen("1.5", 25)
    view.see("1.2", "1.5", again)  # read again: its place kept
    view.see("1.1", "1.9", None)  # gone, and its series with it
    view.see("1.4", "1.1", None)  # gone already
    view.see("1.2", "1.3", None)
    view.see("1.2", "1.4", _seen("1.4"))
    assert view.size == 45
    assert view.by_series() == {"1.2": listed}  # kept up to date, not listed again
    assert [i.sop for i in listed] == ["1.5", "1.7", "1.4"]
    assert listed[0] is again[2][0]


def test_views_are_bounded_by_the_stored_bytes() -> None:
    views = Views(limit=25)
    for n in range(3):
        view = StudyView()
        view.see("1.1", f"1.{n}", _seen(f"1.{n}"))
        views.keep(f"2.{n}", view)
    assert len(views) == 2  # the least recently refreshed went
    assert views.take("2.0") is None
    assert views.take("2.2") is not None
    assert views.take("2.2") is None  # taken: kept again once current


def test_the_last_study_refreshed_stays_even_past_the_bound() -> None:
    views = Views(limit=25)
    small, large = StudyView(), StudyView()
    small.see("1.1", "1.1", _seen("1.1", 10))
    large.see("1.2", "1.2", _seen("1.2", 30))
    large.see("1.2", "1.3", _seen("1.3", 30))
    views.keep("2.1", small)
    views.keep("2.2", large)  # alone past the bound: the others go, not it
    assert len(views) == 1
    assert views.take("2.1") is None
    assert views.take("2.2") is large
    views.keep("2.2", large)
    views.keep("2.1", small)  # the next study refreshed takes its place
    assert views.take("2.2") is None
    assert views.take("2.1") is small


def _store(archive: Archive, folder: Path, **kwargs: object) -> InstanceKey:
    path = write_instance(folder, **kwargs)  # type: ignore[arg-type]
    with path.open("rb") as fp:
        options = ConvertOptions(on_duplicate="overwrite")
        key = store_instance(archive, options, read_instance(fp, path.name)).key
    assert key is not None
    return key


def _index_rows(catalog: Catalog, study: str) -> list[object]:
    with catalog.open_index() as index:
        return [index.search(level, Query(study=study)) for level in Level]


def _scans(archive: Archive, catalog: Catalog) -> int:
    """How many series folders ``catalog.settle()`` scanned."""
    scanned: list[str] = []
    stat_children = archive.store.stat_children

    def counted(folder: str, name: str) -> object:
        scanned.append(folder)
        return stat_children(folder, name)

    archive.store.stat_children = counted  # type: ignore[method-assign]
    try:
        catalog.settle()
    finally:
        del archive.store.stat_children
    return len(scanned)


def test_named_changes_give_the_bytes_of_a_whole_refresh(tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive")
    study, series = generate_uid(), [generate_uid(), generate_uid()]
    chance = random.Random(3)
    keys = [
        _store(archive, tmp_path / "in", study=study, series=series[n % 2], instance_number=n)
        for n in range(6)
    ]
    catalog = Catalog(archive)
    catalog.open_index().close()
    catalog.settle([study])
    for round_ in range(12):
        action = chance.choice(["add", "update", "delete", "new series"])
        if action == "delete" and len(keys) > 1:
            key = keys.pop(chance.randrange(len(keys)))
            archive.store.remove(paths.instance_metadata(*key))
        elif action == "update":
            key = chance.choice(keys)
            _store(
                archive,
                tmp_path / "in",
                study=study,
                series=key.series_instance_uid,
                sop=key.sop_instance_uid,
                instance_number=round_,
                patient_id=f"P{round_}",  # a conflict with the others
            )
        else:
            se = generate_uid() if action == "new series" else chance.choice(series)
            key = _store(archive, tmp_path / "in", study=study, series=se, instance_number=round_)
            keys.append(key)
        catalog.defer_instances([key])
        # Only the named instance was looked at again: no folder scanned.
        assert _scans(archive, catalog) == 0
        assert archive.store.list(CHANGED) == []
        named = (_derived(archive, study), _index_rows(catalog, study))
        fresh = Catalog(archive)
        fresh.settle([study])
        assert (_derived(archive, study), _index_rows(fresh, study)) == named


def test_a_study_changed_elsewhere_is_read_whole(tmp_path: Path) -> None:
    archive = open_archive(tmp_path / "archive")
    study, series = generate_uid(), generate_uid()
    _store(archive, tmp_path / "in", study=study, series=series)
    catalog = Catalog(archive)
    catalog.settle([study])
    # Another writer stores without naming it and refreshes the study itself.
    _store(archive, tmp_path / "in", study=study, series=series, instance_number=2)
    Catalog(archive).settle([study])
    named = _store(archive, tmp_path / "in", study=study, series=series, instance_number=3)
    catalog.defer_instances([named])
    assert _scans(archive, catalog) == 1
    assert len(archive.read_json_gz(paths.study_metadata(study))) == 3
    # An unnamed mark (any instance may have changed) reads the study whole too.
    _store(archive, tmp_path / "in", study=study, series=series, instance_number=4)
    catalog.defer([study])
    catalog.defer_instances([named])
    assert _scans(archive, catalog) == 1
    assert len(archive.read_json_gz(paths.study_metadata(study))) == 4
    # Named alone: the view is current again.
    catalog.defer_instances([named])
    assert _scans(archive, catalog) == 0


def test_a_study_read_whole_again_reads_only_what_changed_since_its_view(
    tmp_path: Path,
) -> None:
    """A view no longer trusted whole still knows each document by its version."""
    archive = open_archive(tmp_path / "archive")
    study, series = generate_uid(), generate_uid()
    for n in range(5):
        _store(archive, tmp_path / "in", study=study, series=series, instance_number=n)
    catalog = Catalog(archive)
    catalog.recall = Recall(limit=1)  # keeps one document: the view must do
    catalog.settle([study])
    # Another writer stores one more and refreshes the study itself.
    added = _store(archive, tmp_path / "in", study=study, series=series, instance_number=9)
    Catalog(archive).settle([study])
    catalog.defer([study])
    assert _reads(archive, catalog) == [paths.instance_metadata(*added)]
    fresh = Catalog(archive)
    fresh.settle([study])
    assert len(archive.read_json_gz(paths.study_metadata(study))) == 6
    assert _index_rows(catalog, study) == _index_rows(fresh, study)


def _reads(archive: Archive, catalog: Catalog) -> list[str]:
    """The instance metadata documents ``catalog.settle()`` read."""
    read: list[str] = []
    reader = archive.store.read

    def counted(path: str) -> bytes:
        if "/instances/" in path and path.endswith(paths.METADATA):
            read.append(path)
        return reader(path)

    archive.store.read = counted  # type: ignore[method-assign]
    try:
        catalog.settle()
    finally:
        del archive.store.read
    return read


def test_names_left_by_a_writer_killed_before_its_marker_go_with_the_next_refresh(
    tmp_path: Path,
) -> None:
    archive = open_archive(tmp_path / "archive")
    study, series = generate_uid(), generate_uid()
    key = _store(archive, tmp_path / "in", study=study, series=series)
    catalog = Catalog(archive)
    catalog.journal.mark_stale(study, [(series, key.sop_instance_uid)])
    archive.store.remove(f"{paths.WORK_DIR}/stale/{study}")
    assert catalog.journal.changes(study).instances == {(series, key.sop_instance_uid)}
    catalog.settle([study])
    assert catalog.journal.changes(study).names == ()


@pytest.mark.parametrize("name", ["*~ab", "not-a-uid~1.2~ab", "1.2~ab"])
def test_a_name_not_understood_stands_for_every_instance(tmp_path: Path, name: str) -> None:
    archive = open_archive(tmp_path / "archive")
    archive.store.write(f"{CHANGED}/1.2.3/{name}", b"")
    changes = Catalog(archive).journal.changes("1.2.3")
    assert changes.names == (name,)
    assert changes.instances is None
