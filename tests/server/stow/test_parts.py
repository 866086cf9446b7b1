"""Storing STOW-RS parts one by one: each failure its FailureReason, the others stored."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.convert.status import (
    CANNOT_UNDERSTAND,
    DATASET_MISMATCH,
    SOP_CLASS_NOT_SUPPORTED,
)
from dicomweb_archive.server.stow.body import SpooledPart
from dicomweb_archive.server.stow.parts import store_parts
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.manifest import ensure, read_options


def _part(number: int, path: Path, content_type: str | None = None) -> SpooledPart:
    return SpooledPart(number, path.parent, content_type, size=path.stat().st_size, path=str(path))


def test_each_part_is_stored_or_fails_alone(tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    archive = open_archive(tmp_path / "archive")
    ensure(archive.store, ConvertOptions().archive_options())
    options = ConvertOptions.for_archive(read_options(archive), workers=1)
    ct = tmp_path / "ct.dcm"
    shutil.copy(get_testdata_file("CT_small.dcm"), ct)
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    dicomdir = tmp_path / "DICOMDIR"
    shutil.copy(get_testdata_file("DICOMDIR"), dicomdir)
    parts = [
        _part(1, ct),
        _part(2, text),
        _part(3, empty),
        _part(4, ct, "application/json"),
        _part(5, dicomdir),
    ]
    stored, not_dicom, nothing, json, directory = store_parts(archive, options, parts, None)
    source = pydicom.dcmread(ct)
    assert stored.failure is None and stored.sop_instance_uid == source.SOPInstanceUID
    assert archive.study_uids() == [source.StudyInstanceUID]  # refreshed: listed at once
    assert not_dicom.failure == CANNOT_UNDERSTAND and not_dicom.sop_instance_uid is None
    assert nothing.failure == CANNOT_UNDERSTAND and nothing.reason == "the part is empty"
    assert json.failure == CANNOT_UNDERSTAND and "application/json" in str(json.reason)
    assert directory.failure == SOP_CLASS_NOT_SUPPORTED
    [other] = store_parts(archive, options, [_part(1, ct)], "1.2.3")
    assert other.failure == DATASET_MISMATCH
    assert other.sop_instance_uid == source.SOPInstanceUID


def test_a_refused_part_whose_uids_cannot_be_read_fails_alone(tmp_path: Path) -> None:
    """The UIDs of a part the converter refused are read again for its failure,
    as far as they can be: an unknown VR there (pydicom fails converting the
    value) leaves them unknown, and the part fails as it would anyway."""
    (tmp_path / "archive").mkdir()
    archive = open_archive(tmp_path / "archive")
    ensure(archive.store, ConvertOptions().archive_options())
    options = ConvertOptions.for_archive(read_options(archive), workers=1)
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    sop_class = b"\x08\x00\x16\x00UI"
    study = b"\x20\x00\x0d\x00UI"
    assert data.count(sop_class) == 1 and data.count(study) == 1
    damaged = tmp_path / "damaged.dcm"
    damaged.write_bytes(
        data.replace(sop_class, b"\x08\x00\x16\x00TI").replace(study, b"\x20\x00\x0d\x00TI")
    )
    ct = tmp_path / "ct.dcm"
    ct.write_bytes(data)
    failed, stored = store_parts(archive, options, [_part(1, damaged), _part(2, ct)], None)
    assert failed.failure == CANNOT_UNDERSTAND, failed.reason
    assert (failed.sop_class_uid, failed.sop_instance_uid) == (None, None)
    assert stored.failure is None
