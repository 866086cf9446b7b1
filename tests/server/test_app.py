from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.server.app import create_app, error_response
from tests.server.conftest import arrange, converted
from tests.server.live import live_server

SOURCES = ["CT_small.dcm", "MR_small.dcm", "SC_rgb_rle_2frame.dcm", "JPEG2000.dcm"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, layout: str) -> Path:
    return converted(tmp_path_factory, layout, SOURCES)


@pytest.fixture(scope="module")
def client(archive: Path) -> Iterator[TestClient]:
    with TestClient(create_app(archive)) as test_client:
        yield test_client


def _ds(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(get_testdata_file(name))


def test_qido_studies_and_matching(client: TestClient) -> None:
    response = client.get("/dicomweb/studies")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+json"
    assert len(response.json()) == 4
    ct = _ds("CT_small.dcm")
    rows = client.get("/dicomweb/studies", params={"PatientName": "CompressedSamples*"}).json()
    assert len(rows) == 3  # CT_small, MR_small and JPEG2000 (NM)
    rows = client.get("/dicomweb/studies", params={"00100020": ct.PatientID}).json()
    assert [r["0020000D"]["Value"][0] for r in rows] == [ct.StudyInstanceUID]
    fuzzy = client.get("/dicomweb/studies", params={"fuzzymatching": "true"})
    assert fuzzy.headers["warning"].startswith("299 ")
    assert client.get("/dicomweb/studies", params={"StudyDate": "garbage"}).status_code == 400
    assert client.get("/dicomweb/studies", params={"NoSuchKeyword": "x"}).status_code == 400
    series = client.get(f"/dicomweb/studies/{ct.StudyInstanceUID}/series").json()
    assert series[0]["0020000E"]["Value"] == [ct.SeriesInstanceUID]
    instances = client.get("/dicomweb/instances", params={"SOPInstanceUID": ct.SOPInstanceUID})
    assert instances.json()[0]["00080018"]["Value"] == [ct.SOPInstanceUID]
    paged = [
        client.get("/dicomweb/studies", params={"limit": 1, "offset": i}).json() for i in range(4)
    ]
    assert [p[0]["0020000D"] for p in paged] == [r["0020000D"] for r in response.json()]


@pytest.fixture(scope="module")
def live(archive: Path) -> Iterator[str]:
    with live_server(create_app(archive)) as url:
        yield url


def test_dicomweb_client_against_a_live_server(live: str) -> None:
    client = DICOMwebClient(live)
    studies = client.search_for_studies(search_filters={"PatientName": "CompressedSamples^MR1"})
    mr = _ds("MR_small.dcm")
    assert [s["0020000D"]["Value"][0] for s in studies] == [mr.StudyInstanceUID]
    [series] = client.search_for_series(mr.StudyInstanceUID)
    assert series["0020000E"]["Value"] == [mr.SeriesInstanceUID]
    [meta] = client.retrieve_series_metadata(mr.StudyInstanceUID, mr.SeriesInstanceUID)
    assert meta["00100010"]["Value"] == [{"Alphabetic": str(mr.PatientName)}]
    [frame] = client.retrieve_instance_frames(
        mr.StudyInstanceUID, mr.SeriesInstanceUID, mr.SOPInstanceUID, frame_numbers=[1]
    )
    assert frame == mr.PixelData
    j2k = _ds("JPEG2000.dcm")
    [frame] = client.retrieve_instance_frames(
        j2k.StudyInstanceUID,
        j2k.SeriesInstanceUID,
        j2k.SOPInstanceUID,
        frame_numbers=[1],
        media_types=(("image/jp2", "1.2.840.10008.1.2.4.91"),),
    )
    assert frame == next(generate_frames(j2k.PixelData, number_of_frames=1))


def _error_body(response: httpx.Response, status: int, error: str) -> str:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert (body["status"], body["error"]) == (status, error)
    return str(body["detail"])


def test_every_error_is_json_with_cors(client: TestClient) -> None:
    cors = {"Origin": "http://viewer"}
    missing = client.get("/dicomweb/nosuchservice", headers=cors)
    detail = _error_body(missing, 404, "ResourceNotFoundError")
    assert detail == "no resource /dicomweb/nosuchservice"
    assert missing.headers["access-control-allow-origin"] == "*"
    outside = client.get("/elsewhere")
    assert _error_body(outside, 404, "ResourceNotFoundError") == "no resource /elsewhere"
    refused = client.delete("/dicomweb/studies", headers=cors)
    assert _error_body(refused, 405, "MethodNotAllowedError").startswith("DELETE is not allowed")
    # Every route of the path counts: searching (GET, HEAD) and storing (POST).
    assert refused.headers["allow"] == "GET, HEAD, POST"
    assert refused.headers["access-control-allow-origin"] == "*"
    query = client.get("/dicomweb/studies", params={"StudyDate": "garbage"}, headers=cors)
    _error_body(query, 400, "InvalidQueryError")
    assert query.headers["access-control-allow-origin"] == "*"
    ct = _ds("CT_small.dcm")
    url = f"/dicomweb/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}/metadata"
    beyond = client.get(url, headers={"Range": "bytes=100000000-", **cors})
    assert beyond.status_code == 416
    assert beyond.content == b""  # range loaders would append a body to the image
    assert beyond.headers["content-range"].startswith("bytes */")
    assert beyond.headers["access-control-allow-origin"] == "*"


def test_a_damaged_study_zip_is_a_logged_503(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([get_testdata_file(SOURCES[0])]).ok
    arrange(root, "zips")
    ct = _ds(SOURCES[0])
    with TestClient(create_app(root)) as client:  # indexed at start-up, damaged after
        (root / paths.study_zip(ct.StudyInstanceUID)).write_bytes(b"not a zip")
        damaged = client.get(f"/dicomweb/studies/{ct.StudyInstanceUID}/metadata")
    assert "not a readable ZIP file" in _error_body(damaged, 503, "InvalidStudyZipError")
    [record] = [r for r in caplog.records if r.name == "dicomweb_archive.server.app"]
    assert record.levelname == "ERROR" and "InvalidStudyZipError" in record.getMessage()


def test_error_response_of_a_bug_and_of_other_http_errors() -> None:
    request = Request({"type": "http", "method": "GET", "path": "/x", "headers": []})
    bug = error_response(request, RuntimeError("a secret path /etc"))
    assert bug.status_code == 500
    body = orjson.loads(bytes(bug.body))
    assert (body["status"], body["error"]) == (500, "RuntimeError")
    assert "/etc" not in body["detail"]
    teapot = error_response(request, HTTPException(418, "short and stout"))
    assert teapot.status_code == 418
    assert orjson.loads(bytes(teapot.body))["detail"] == "short and stout"


def test_what_start_up_made_is_kept_out_of_full_collections(tmp_path: Path) -> None:
    before = gc.get_threshold()  # (another server of this module may be running)
    with TestClient(create_app(tmp_path / "archive")) as client:
        assert gc.get_freeze_count() > 0  # modules, tables, the index: frozen
        # what it makes later: full passes at quiet moments (collector.py), not CPython's
        assert gc.get_threshold()[2] > 10**9
        client.get("/dicomweb/studies").raise_for_status()
    assert gc.get_freeze_count() == 0  # stopped: collected as before
    assert gc.get_threshold() == before
