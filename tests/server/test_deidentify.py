"""Retrieves with ``?deidentify=PROFILE``: ZIP, multipart and single part."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.deidentify.keys import PseudonymKey
from dicomweb_archive.server.app import create_app
from tests.server.conftest import parts

KEY = b"the server's de-identification key"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deidentify")
    us = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    us.Modality = "US"  # no Burned In Annotation: may show text
    us.save_as(root / "us.dcm")
    inputs = [get_testdata_file("CT_small.dcm"), str(root / "us.dcm")]
    assert Converter(root / "archive", ConvertOptions(workers=1)).convert(inputs).ok
    (root / "key").write_bytes(KEY)
    return root


@pytest.fixture(scope="module")
def client(archive: Path) -> Iterator[TestClient]:
    with TestClient(create_app(archive / "archive", deidentify_key=str(archive / "key"))) as c:
        yield c


def _study(name: str) -> str:
    return str(pydicom.dcmread(get_testdata_file(name)).StudyInstanceUID)


@pytest.mark.usefixtures("moving_clock")
def test_a_deidentified_zip_is_the_same_bytes_on_every_request(client: TestClient) -> None:
    """The clock moves 2 s between the answers; neither the files nor the ZIP show it."""
    url = f"/dicomweb/studies/{_study('CT_small.dcm')}"
    params = {"accept": "application/zip", "deidentify": "basic"}
    first, second = (client.get(url, params=params) for _ in range(2))
    assert (first.status_code, second.status_code) == (200, 200), first.text
    assert first.content == second.content
    with zipfile.ZipFile(io.BytesIO(first.content)) as bundle:
        assert {i.date_time for i in bundle.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_zip_of_deidentified_files(client: TestClient) -> None:
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    study = source.StudyInstanceUID
    response = client.get(
        f"/dicomweb/studies/{study}",
        params={"accept": "application/zip", "deidentify": "basic,retain-long-modified-dates"},
    )
    assert response.status_code == 200, response.text
    key = PseudonymKey(KEY)
    assert response.headers["content-disposition"] == f'attachment; filename="{key.uid(study)}.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
        [name] = bundle.namelist()
        ds = pydicom.dcmread(io.BytesIO(bundle.read(name)))
    pseudonym = key.identifier("patient", source.PatientID)
    assert name.startswith(f"{pseudonym}_") and name.endswith("/0001.dcm")
    assert str(source.PatientID) not in name and source.StudyDate not in name
    assert ds.PatientID == pseudonym and ds.StudyInstanceUID == key.uid(study)
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100", "113107"]


def test_multipart_and_single_part(client: TestClient) -> None:
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    url = f"/dicomweb/studies/{source.StudyInstanceUID}"
    response = client.get(url, params={"deidentify": "basic"})
    [(_, payload)] = parts(response.content)
    assert pydicom.dcmread(io.BytesIO(payload)).PatientIdentityRemoved == "YES"
    single = f"{url}/series/{source.SeriesInstanceUID}/instances/{source.SOPInstanceUID}"
    answer = client.get(single, params={"accept": "application/dicom", "deidentify": "basic"})
    assert answer.headers["content-type"] == "application/dicom"
    assert not pydicom.dcmread(io.BytesIO(answer.content)).PatientName


def test_burned_in_annotation_refused_before_the_answer(client: TestClient) -> None:
    url = f"/dicomweb/studies/{_study('MR_small.dcm')}"
    refused = client.get(url, params={"accept": "application/zip", "deidentify": "basic"})
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert "is not given and US images often carry text" in detail
    assert "allowBurnedIn=true" in detail
    params = {"accept": "application/zip", "deidentify": "basic", "allowBurnedIn": "true"}
    assert client.get(url, params=params).status_code == 200


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"deidentify": "strict"}, "deidentify: 'strict': a profile starts with 'basic'"),
        ({"deidentify": "basic", "allowBurnedIn": "maybe"}, "true or false, not 'maybe'"),
    ],
)
def test_bad_parameters(client: TestClient, params: dict[str, str], detail: str) -> None:
    response = client.get(f"/dicomweb/studies/{_study('CT_small.dcm')}", params=params)
    assert response.status_code == 400 and detail in response.json()["detail"]


def test_without_a_key_refused(archive: Path) -> None:
    with TestClient(create_app(archive / "archive")) as plain:
        response = plain.get(
            f"/dicomweb/studies/{_study('CT_small.dcm')}", params={"deidentify": "basic"}
        )
    assert response.status_code == 400
    assert "no de-identification key (dwa serve --deidentify-key FILE)" in response.json()["detail"]
