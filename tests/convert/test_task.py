"""The task of a conversion's workers: one input, one outcome, never an exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from dicomweb_archive.convert import task
from dicomweb_archive.convert.inputs import InputRef
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.convert.task import (
    convert_input,
    convert_numbered,
    lost_input,
    release_task_archive,
    task_archive,
)


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
