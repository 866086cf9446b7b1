"""C-STORE: through store_instance, each outcome its Status and Error Comment."""

from __future__ import annotations

import errno
import io
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pynetdicom import _config

from dicomweb_archive.convert.status import (
    CANNOT_UNDERSTAND,
    DATASET_MISMATCH,
    DATASET_MISMATCH_WARNING,
    OUT_OF_RESOURCES,
)
from dicomweb_archive.demo.samples import MULTIFRAME_SOP_CLASS, write_ct_series, write_multiframe
from dicomweb_archive.dimse.provider import Listener
from dicomweb_archive.dimse.store import SUCCESS, StoreStatus, store_dataset
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.index import Level, Query
from dicomweb_archive.store.objectstore import work_folder
from tests.dimse.conftest import associate, exported
from tests.dimse.live import AE_TITLE, dwa_listen, run
from tests.export.test_p10 import _dataset

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
#: Duplicate SOP Instance (PS3.7 C.4.3): the answer of the default duplicates policy.
DUPLICATE_SOP_INSTANCE = 0x0111


def _p10(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_stored_once_then_unchanged_and_regenerated_alike(
    start_listener: Callable[..., Listener],
) -> None:
    listener = start_listener()
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assoc = associate(listener, (CT_IMAGE_STORAGE, [str(source.file_meta.TransferSyntaxUID)]))
    assert assoc.is_established
    first = assoc.send_c_store(source)
    again = assoc.send_c_store(source)
    assoc.release()
    assert first.Status == again.Status == SUCCESS
    regenerated = exported(listener.archive, source)
    assert _dataset(regenerated) == _dataset(source)
    assert regenerated.PixelData == source.PixelData


def test_an_instance_without_a_study_fails_with_the_reason(
    start_listener: Callable[..., Listener],
) -> None:
    listener = start_listener()
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del source.StudyInstanceUID
    assoc = associate(listener, (CT_IMAGE_STORAGE, [str(source.file_meta.TransferSyntaxUID)]))
    status = assoc.send_c_store(source)
    assoc.release()
    assert status.Status == CANNOT_UNDERSTAND
    assert status.ErrorComment == "StudyInstanceUID is missing"
    assert listener.archive.study_uids() == []


def test_data_sets_that_do_not_match_the_request(start_listener: Callable[..., Listener]) -> None:
    context = start_listener().context
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    data = _p10(source)
    other = store_dataset(context, io.BytesIO(data), CT_IMAGE_STORAGE, "1.2.3.4")
    assert other.status == DATASET_MISMATCH and other.failed
    assert other.comment == f"the data set is SOP Instance {source.SOPInstanceUID}, not 1.2.3.4"
    mr = store_dataset(
        context, io.BytesIO(data), "1.2.840.10008.5.1.4.1.1.4", str(source.SOPInstanceUID)
    )
    assert mr.status == DATASET_MISMATCH_WARNING and not mr.failed  # stored nevertheless
    assert "not 1.2.840.10008.5.1.4.1.1.4" in mr.comment
    assert context.archive.study_uids() == [source.StudyInstanceUID]


def test_a_full_disk_is_out_of_resources(
    start_listener: Callable[..., Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    context = start_listener().context
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("dicomweb_archive.dimse.store.store_instance", full)
    status = store_dataset(
        context, io.BytesIO(_p10(source)), CT_IMAGE_STORAGE, str(source.SOPInstanceUID)
    )
    assert status.status == OUT_OF_RESOURCES
    assert status.comment == "cannot store: cannot write: no space left on device"


def test_the_error_comment_is_an_lo() -> None:
    ds = StoreStatus(CANNOT_UNDERSTAND, "x" * 100 + "\\\n").to_dataset()
    assert ds.Status == CANNOT_UNDERSTAND
    assert len(ds.ErrorComment) == 64 and ds.ErrorComment.endswith("...")
    assert "\\" not in StoreStatus(1, "a\\b").to_dataset().ErrorComment
    assert "ErrorComment" not in StoreStatus(SUCCESS).to_dataset()


def test_a_stored_study_is_deferred_to_the_flusher(
    start_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    listener = start_listener()
    source = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    status = store_dataset(
        listener.context,
        io.BytesIO(_p10(source)),
        "1.2.840.10008.5.1.4.1.1.4",
        str(source.SOPInstanceUID),
    )
    assert status.status == SUCCESS
    journal = listener.context.catalog.journal
    assert journal.is_stale(str(source.StudyInstanceUID))
    listener.context.settle()
    assert not journal.stale()


def test_associations_storing_into_one_study_at_once(
    start_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    files = write_ct_series(tmp_path / "ct", slices=12, rows=16, columns=16)
    listener = start_listener()

    def send(paths: list[Path]) -> list[int]:
        assoc = associate(listener, (CT_IMAGE_STORAGE, ["1.2.840.10008.1.2.1"]))
        statuses = [int(assoc.send_c_store(path).Status) for path in paths]
        assoc.release()
        return statuses

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(send, [files[0::3], files[1::3], files[2::3]]))
    assert [status for statuses in results for status in statuses] == [SUCCESS] * 12
    listener.context.settle()
    study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    [row] = listener.context.index.search(Level.STUDY, Query())
    assert row["0020000D"]["Value"] == [study]
    assert row["00201208"]["Value"] == [12]


def test_a_changed_duplicate_is_refused_by_the_archives_policy(
    start_listener: Callable[..., Listener], caplog: pytest.LogCaptureFixture
) -> None:
    listener = start_listener()
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assoc = associate(listener, (CT_IMAGE_STORAGE, [str(source.file_meta.TransferSyntaxUID)]))
    assert assoc.send_c_store(source).Status == SUCCESS
    source.PatientName = "Changed^Name"
    with caplog.at_level(logging.INFO, logger="dicomweb_archive.dimse"):
        refused = assoc.send_c_store(source)
    assoc.release()
    assert refused.Status == DUPLICATE_SOP_INSTANCE
    assert refused.ErrorComment
    assert f"of SOP Instance {source.SOPInstanceUID} failed (0x0111)" in caplog.text


def test_a_full_disk_while_receiving_is_out_of_resources(
    start_listener: Callable[..., Listener],
    small_filesystem: Callable[[int], Path],
    tmp_path: Path,
) -> None:
    listener = start_listener(small_filesystem(4 << 20) / "archive")
    large = pydicom.dcmread(write_multiframe(tmp_path / "mf.dcm", frames=32, rows=256, columns=256))
    small = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assoc = associate(
        listener,
        (MULTIFRAME_SOP_CLASS, [EXPLICIT_VR_LITTLE_ENDIAN]),
        (CT_IMAGE_STORAGE, [str(small.file_meta.TransferSyntaxUID)]),
    )
    refused = assoc.send_c_store(large)
    stored = assoc.send_c_store(small)  # the space is back: the association goes on
    assoc.release()
    assert refused.Status == OUT_OF_RESOURCES
    assert refused.ErrorComment == "cannot receive: cannot write: no space left on device"
    assert stored.Status == SUCCESS
    assert listener.archive.study_uids() == [small.StudyInstanceUID]
    assert listener.context.receipts.held() == []


def test_a_data_set_over_the_limit_is_refused_and_the_next_stored(
    start_listener: Callable[..., Listener], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    listener = start_listener(max_dataset_size=1 << 20)
    large = pydicom.dcmread(write_multiframe(tmp_path / "mf.dcm", frames=9, rows=256, columns=256))
    small = pydicom.dcmread(
        write_multiframe(tmp_path / "mf2.dcm", frames=7, rows=256, columns=256, seed=1)
    )
    assoc = associate(listener, (MULTIFRAME_SOP_CLASS, [EXPLICIT_VR_LITTLE_ENDIAN]))
    with caplog.at_level(logging.INFO, logger="dicomweb_archive.dimse"):
        refused = assoc.send_c_store(large)
        stored = assoc.send_c_store(small)
        assoc.release()
    assert refused.Status == OUT_OF_RESOURCES
    assert refused.ErrorComment == "the data set exceeds the limit of 1048576 bytes"
    assert f"of SOP Instance {large.SOPInstanceUID} failed (0xA700)" in caplog.text
    assert stored.Status == SUCCESS
    assert listener.archive.study_uids() == [small.StudyInstanceUID]
    assert listener.context.receipts.held() == []


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


@pytest.mark.integration
def test_storescu_of_a_large_multiframe_instance_in_bounded_memory(tmp_path: Path) -> None:
    source = write_multiframe(tmp_path / "mf.dcm", frames=96)  # 48 MB
    size = source.stat().st_size
    with dwa_listen(tmp_path / "archive") as listening:
        pid = listening.process.pid
        echo = run("echoscu", "-aec", AE_TITLE, "127.0.0.1", str(listening.port))
        assert echo.returncode == 0, echo.stderr
        at_rest = _status_kb(pid, "VmRSS") * 1024
        done = run("storescu", "-aec", AE_TITLE, "127.0.0.1", str(listening.port), str(source))
        assert done.returncode == 0, done.stdout + done.stderr
        listening.wait_for_log("1 stored")
        peak = _status_kb(pid, "VmHWM") * 1024
    # Held whole, the data set alone would be the size of the instance, twice over.
    assert peak - at_rest < size / 4, f"peak {peak >> 20} MB, at rest {at_rest >> 20} MB"
    sent = pydicom.dcmread(source)
    with open_archive(tmp_path / "archive") as archive:
        assert exported(archive, sent).PixelData == sent.PixelData


def test_an_archive_in_an_object_store_receives_in_its_work_area(
    start_listener: Callable[..., Listener], s3_url: str, tmp_path: Path
) -> None:
    listener = start_listener(s3_url)
    assert listener.context.receipts.folder.parent == work_folder(s3_url) / ".dwa" / "tmp"
    source = pydicom.dcmread(
        write_multiframe(tmp_path / "mf.dcm", frames=20, rows=256, columns=256)
    )
    assoc = associate(listener, (MULTIFRAME_SOP_CLASS, [EXPLICIT_VR_LITTLE_ENDIAN]))
    status = assoc.send_c_store(source)
    assoc.release()
    assert status.Status == SUCCESS
    assert exported(listener.archive, source).PixelData == source.PixelData
    assert listener.context.receipts.held() == []


def test_stored_from_pynetdicom_s_own_file_when_it_makes_one(
    start_listener: Callable[..., Listener], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_config, "STORE_RECV_CHUNKED_DATASET", True)
    listener = start_listener()
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assoc = associate(listener, (CT_IMAGE_STORAGE, [str(source.file_meta.TransferSyntaxUID)]))
    status = assoc.send_c_store(source)
    assoc.release()
    assert status.Status == SUCCESS
    assert listener.archive.study_uids() == [source.StudyInstanceUID]
