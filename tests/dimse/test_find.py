"""C-FIND from the QIDO-RS index, with pynetdicom as the client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.dimse.provider import Listener
from dicomweb_archive.dimse.sop_classes import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)
from tests.dimse.conftest import associate

SOURCES = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm")


@pytest.fixture
def listener(start_listener: Callable[..., Listener], tmp_path: Path) -> Listener:
    inputs = [str(get_testdata_file(name)) for name in SOURCES]
    assert Converter(tmp_path / "archive", ConvertOptions(workers=1)).convert(inputs).ok
    return start_listener()


def find(listener: Listener, model: str, **keys: Any) -> list[tuple[int, Dataset | None]]:
    identifier = Dataset()
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    assoc = associate(listener, model)
    answers = [
        (int(status.Status), found) for status, found in assoc.send_c_find(identifier, model)
    ]
    assoc.release()
    return answers


def test_studies_series_images(listener: Listener) -> None:
    studies = find(
        listener,
        StudyRootQueryRetrieveInformationModelFind,
        QueryRetrieveLevel="STUDY",
        PatientName="Compressed*",
        StudyInstanceUID="",
        ModalitiesInStudy="",
    )
    assert [status for status, _ in studies] == [0xFF00, 0xFF00, 0xFF00, 0x0000]
    assert sorted(str(d.ModalitiesInStudy) for _, d in studies if d) == ["CT", "MR", "NM"]
    ct = get_testdata_file("CT_small.dcm", read=True)
    [(pending, series), (done, _)] = find(
        listener,
        StudyRootQueryRetrieveInformationModelFind,
        QueryRetrieveLevel="SERIES",
        StudyInstanceUID=ct.StudyInstanceUID,
        SeriesInstanceUID="",
        Modality="",
    )
    assert (pending, done) == (0xFF00, 0x0000)
    assert series is not None and series.SeriesInstanceUID == ct.SeriesInstanceUID
    [(_, image), _] = find(
        listener,
        StudyRootQueryRetrieveInformationModelFind,
        QueryRetrieveLevel="IMAGE",
        SOPInstanceUID=ct.SOPInstanceUID,
        SOPClassUID="",
        Rows="",
    )
    assert image is not None and image.Rows == ct.Rows and image.SOPClassUID == ct.SOPClassUID


def test_patients(listener: Listener) -> None:
    ct = get_testdata_file("CT_small.dcm", read=True)
    [(_, patient), (done, _)] = find(
        listener,
        PatientRootQueryRetrieveInformationModelFind,
        QueryRetrieveLevel="PATIENT",
        PatientID=ct.PatientID,
        PatientName="",
        NumberOfPatientRelatedStudies="",
    )
    assert done == 0x0000 and patient is not None
    assert patient.PatientName == ct.PatientName
    assert patient.NumberOfPatientRelatedStudies == 1


def test_refusals_carry_their_reason(listener: Listener) -> None:
    [(status, _)] = find(
        listener, StudyRootQueryRetrieveInformationModelFind, QueryRetrieveLevel="PATIENT"
    )
    assert status == 0xA900
    [(status, _)] = find(
        listener,
        StudyRootQueryRetrieveInformationModelFind,
        QueryRetrieveLevel="STUDY",
        StudyDate="2024-1-1",
    )
    assert status == 0xA900


def test_a_study_stored_by_c_store_is_found_at_once(listener: Listener) -> None:
    mr = get_testdata_file("MR_small_bigendian.dcm", read=True)
    mr.StudyInstanceUID = mr.SOPInstanceUID = mr.file_meta.MediaStorageSOPInstanceUID = "1.2.3.99"
    assoc = associate(listener, (mr.SOPClassUID, [str(mr.file_meta.TransferSyntaxUID)]))
    assert assoc.send_c_store(mr).Status == 0x0000
    assoc.release()
    [(_, study), _] = find(
        listener,
        StudyRootQueryRetrieveInformationModelFind,
        QueryRetrieveLevel="STUDY",
        StudyInstanceUID="1.2.3.99",
    )
    assert study is not None and study.StudyInstanceUID == "1.2.3.99"
