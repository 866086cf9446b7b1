"""The task of a conversion's workers: one input, one outcome, never an exception."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomweb_archive import Converter
from dicomweb_archive.convert import task
from dicomweb_archive.convert.inputs import InputRef
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.convert.task import (
    convert_input,
    convert_numbered,
    lost_input,
    release_task_archive,
    task_archive,
    task_index,
)
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import QidoIndex


def test_an_input_becomes_its_outcome(tmp_path: Path) -> None:
    archive = str(tmp_path / "archive")
    ct = InputRef(get_testdata_file("CT_small.dcm"))
    index, outcome = convert_numbered(archive, ConvertOptions(), (7, ct))
    assert index == 7 and outcome.status == "converted" and outcome.key is not None
    assert convert_input(archive, ConvertOptions(), ct).status == "unchanged"


def test_what_is_not_dicom_fails_or_is_skipped_where_it_was_found(tmp_path: Path) -> None:
    readme = tmp_path / "README"
    readme.write_text("not DICOM")
    archive = str(tmp_path / "archive")
    named = convert_input(archive, ConvertOptions(), InputRef(str(readme)))
    found = convert_input(archive, ConvertOptions(), InputRef(str(readme), contained=True))
    assert (named.status, found.status) == ("failed", "skipped")
    assert named.reason == found.reason and "not a DICOM file" in str(named.reason)


def test_an_input_lost_with_its_worker_failed_with_the_reason() -> None:
    index, outcome = lost_input((3, InputRef("a.dcm")), "its worker died each time it ran")
    assert index == 3
    assert (outcome.name, outcome.status, outcome.reason) == (
        "a.dcm",
        "failed",
        "not converted: its worker died each time it ran",
    )


def test_a_process_opens_the_archive_of_its_tasks_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    try:
        opened = task_archive(first)
        assert task_archive(first) is opened
        assert task_archive(second) is not opened  # another archive's tasks
        assert task_archive(first) is not opened
        # A forked worker opens its own.
        here = task_archive(first)
        monkeypatch.setattr(task.os, "getpid", lambda: -1)
        assert task_archive(first) is not here
    finally:
        release_task_archive()
    monkeypatch.undo()
    assert task_archive(first) is not opened
    release_task_archive()


def _open_index_files() -> list[str]:
    """The QIDO-RS index files this process holds open."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if os.path.basename(target).startswith("index-"):
                found.append(target)
    return found


def test_the_reduce_keeps_the_index_open_between_tasks_until_the_run_ends(
    tmp_path: Path,
) -> None:
    """Each task opening and closing the index synced it (SQLite copies its log
    into the database when the last connection closes): kept between tasks,
    closed when the run that ran them here ends."""
    archive = tmp_path / "archive"
    ct = get_testdata_file("CT_small.dcm")
    Converter(archive, ConvertOptions(workers=1)).convert([ct])
    assert task_index(str(archive)) is None  # no index: none is made
    release_task_archive()
    Catalog(task_archive(str(archive))).rebuild_index()  # as dwa index does
    release_task_archive()
    first = task_index(str(archive))
    assert first is not None and task_index(str(archive)) is first
    assert _open_index_files()
    release_task_archive()
    assert not _open_index_files()
    # A run on this core: its reduce kept the index open, and closed it at the end.
    Converter(archive, ConvertOptions(workers=1)).convert([ct])
    assert not _open_index_files()
    with open_archive(str(archive)) as opened, QidoIndex(opened) as index:
        assert index.study_row(pydicom.dcmread(ct).StudyInstanceUID) is not None


def test_each_thread_keeps_an_index_of_its_own(tmp_path: Path) -> None:
    """A connection serves the thread that made it (a Dask worker runs tasks on
    several threads)."""
    archive = tmp_path / "archive"
    Converter(archive, ConvertOptions(workers=1)).convert([get_testdata_file("CT_small.dcm")])
    Catalog(task_archive(str(archive))).rebuild_index()
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(task_index(str(archive))))
    thread.start()
    thread.join()
    here = task_index(str(archive))
    assert here is not None and found[0] is not None and found[0] is not here
    release_task_archive()
