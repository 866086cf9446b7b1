"""WADO-RS retrieve of instances, negotiation, ranges and validators."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store.directory import Archive
from dicomweb_archive.store.reader import ArchiveReader
from tests.server.conftest import arrange, stored
from tests.server.live import live_server
from tests.store.test_slices import evict

SOURCES = [
    "CT_small.dcm",
    "MR_small_bigendian.dcm",
    "SC_rgb_rle_2frame.dcm",
    "JPEG2000.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "emri_small_jpeg_ls_lossless.dcm",
]
EVRLE = "1.2.840.10008.1.2.1"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, layout: str) -> Path:
    root = tmp_path_factory.mktemp("wado") / "archive"
    result = Converter(root, ConvertOptions(workers=1)).convert(
        [get_testdata_file(n) for n in SOURCES]
    )
    assert result.ok
    return arrange(root, layout)


@pytest.fixture(scope="module")
def client(archive: Path) -> Iterator[TestClient]:
    with TestClient(create_app(archive)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def live(archive: Path) -> Iterator[str]:
    with live_server(create_app(archive)) as url:
        yield url


def _ds(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(get_testdata_file(name))


def _instance_url(ds: pydicom.Dataset) -> str:
    return (
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def _parts(body: bytes) -> list[tuple[dict[str, str], bytes]]:
    delimiter = f"--{multipart.BOUNDARY}".encode()
    assert body.endswith(delimiter + b"--\r\n")
    out = []
    for chunk in body.split(b"\r\n" + delimiter)[:-1]:
        chunk = chunk.removeprefix(delimiter)
        head, _, payload = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        out.append((headers, payload))
    return out


@pytest.mark.parametrize("name", SOURCES)
def test_retrieve_instance_default_is_explicit_little_endian(client: TestClient, name: str) -> None:
    source = _ds(name)
    response = client.get(
        _instance_url(source), headers={"Accept": 'multipart/related; type="application/dicom"'}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        'multipart/related; type="application/dicom"'
    )
    [(headers, payload)] = _parts(response.content)
    assert headers["content-type"] == f"application/dicom; transfer-syntax={EVRLE}"
    got = pydicom.dcmread(io.BytesIO(payload))
    assert got.file_meta.TransferSyntaxUID == EVRLE
    assert got.SOPInstanceUID == source.SOPInstanceUID
    assert got.PatientName == source.PatientName
    expected = source.pixel_array if name != "emri_small_jpeg_ls_lossless.dcm" else None
    if expected is None:  # pydicom has no JPEG-LS decoder here: the native original
        expected = _ds("emri_small.dcm").pixel_array
    assert np.array_equal(got.pixel_array, expected)
    if source.PhotometricInterpretation.startswith("YBR") and "JPEG" in name.upper():
        assert got.PhotometricInterpretation == "RGB"


def test_retrieve_instance_as_stored(client: TestClient) -> None:
    source = _ds("JPEG2000.dcm")
    response = client.get(
        _instance_url(source),
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
    )
    [(headers, payload)] = _parts(response.content)
    assert headers["content-type"].endswith(f"transfer-syntax={source.file_meta.TransferSyntaxUID}")
    got = pydicom.dcmread(io.BytesIO(payload))
    frames = generate_frames(got.PixelData, number_of_frames=1)
    assert next(frames) == next(generate_frames(source.PixelData, number_of_frames=1))
    single = client.get(_instance_url(source), params={"accept": "application/dicom"})
    assert single.headers["content-type"] == "application/dicom"
    assert pydicom.dcmread(io.BytesIO(single.content)).file_meta.TransferSyntaxUID == EVRLE
    jpeg = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    assert client.get(_instance_url(source), headers={"Accept": jpeg}).status_code == 406
    assert client.get(_instance_url(source), headers={"Accept": "image/png"}).status_code == 406


def test_retrieve_study_series_with_dicomweb_client(live: str) -> None:
    web = DICOMwebClient(live)
    rle = _ds("SC_rgb_rle_2frame.dcm")
    jpeg = _ds("SC_rgb_jpeg_dcmtk.dcm")  # the same series as the RLE image
    series = web.retrieve_series(rle.StudyInstanceUID, rle.SeriesInstanceUID)
    by_uid = {i.SOPInstanceUID: i for i in series}
    assert set(by_uid) == {rle.SOPInstanceUID, jpeg.SOPInstanceUID}
    assert np.array_equal(by_uid[rle.SOPInstanceUID].pixel_array, rle.pixel_array)
    study = web.retrieve_study(rle.StudyInstanceUID)
    assert sorted(i.SOPInstanceUID for i in study) == sorted(by_uid)
    ct = _ds("CT_small.dcm")
    got = web.retrieve_instance(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    for element in ct:
        if element.tag.group != 0x0002 and element.tag != 0xFFFCFFFC:  # padding is dropped
            assert got[element.tag].value == element.value, element
    stored = web.retrieve_instance(
        rle.StudyInstanceUID,
        rle.SeriesInstanceUID,
        rle.SOPInstanceUID,
        media_types=(("application/dicom", "*"),),
    )
    assert stored.file_meta.TransferSyntaxUID == rle.file_meta.TransferSyntaxUID
    assert stored.PixelData == rle.PixelData


def test_frames_single_part_and_decoding(client: TestClient) -> None:
    ct = _ds("CT_small.dcm")
    url = f"{_instance_url(ct)}/frames/1"
    single = client.get(url, params={"accept": "application/octet-stream"})
    assert single.headers["content-type"] == f"application/octet-stream; transfer-syntax={EVRLE}"
    assert single.content == ct.PixelData
    # The accept parameter wins over the header; "undefined" is ignored.
    both = client.get(
        url, params={"accept": "application/octet-stream"}, headers={"Accept": "undefined"}
    )
    assert both.content == ct.PixelData
    jpeg = _ds("SC_rgb_jpeg_dcmtk.dcm")
    decoded = client.get(
        f"{_instance_url(jpeg)}/frames/1", params={"accept": "application/octet-stream"}
    )
    pixels = np.frombuffer(decoded.content, dtype=np.uint8).reshape(jpeg.Rows, jpeg.Columns, 3)
    assert np.array_equal(pixels, jpeg.pixel_array)
    j2k = _ds("JPEG2000.dcm")
    j2k_url = f"{_instance_url(j2k)}/frames/1"
    # image/jp2 means JPEG 2000 lossless unless the request says otherwise.
    assert client.get(j2k_url, params={"accept": "image/jp2"}).status_code == 406
    lossy = "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.91"
    raw = client.get(j2k_url, params={"accept": lossy})
    assert raw.headers["content-type"] == lossy
    assert raw.content == next(generate_frames(j2k.PixelData, number_of_frames=1))
    wrong = client.get(j2k_url, params={"accept": "image/jls"})
    assert wrong.status_code == 406
    # A frame list cannot be single part.
    multi = client.get(
        f"{_instance_url(_ds('SC_rgb_rle_2frame.dcm'))}/frames/1,2",
        params={"accept": "application/octet-stream"},
    )
    assert multi.status_code == 406


def test_ranges_head_and_validators(client: TestClient, archive: Path) -> None:
    ct = _ds("CT_small.dcm")
    url = f"{_instance_url(ct)}/frames/1"
    frame = stored(
        archive, paths.frame_path(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID, 1)
    )
    total = len(frame)
    full = client.get(url)
    assert full.content == frame
    assert full.headers["content-length"] == str(total)
    etag = full.headers["etag"]
    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(total) and head.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    tail = client.get(url, headers={"Range": "bytes=100-"})
    assert (tail.status_code, tail.content) == (206, frame[100:])
    assert tail.headers["content-range"] == f"bytes 100-{total - 1}/{total}"
    clipped = client.get(url, headers={"Range": f"bytes=0-{total * 2}"})
    assert clipped.status_code == 206 and clipped.content == frame
    suffix = client.get(url, headers={"Range": "bytes=-10"})
    assert suffix.content == frame[-10:]
    beyond = client.get(url, headers={"Range": f"bytes={total}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{total}"
    stale = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == frame
    meta_url = f"/dicomweb/studies/{ct.StudyInstanceUID}/metadata"
    for encoding in ("gzip", "identity"):
        first = client.get(meta_url, headers={"Accept-Encoding": encoding})
        again = client.get(
            meta_url, headers={"Accept-Encoding": encoding, "If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304
    gz = client.get(meta_url, headers={"Accept-Encoding": "gzip"}).headers["etag"]
    assert gz != client.get(meta_url, headers={"Accept-Encoding": "identity"}).headers["etag"]


def test_stored_resources_not_in_the_page_cache(client: TestClient, archive: Path) -> None:
    """Read by a worker thread instead of on the event loop: the same answers."""
    ct = _ds("CT_small.dcm")
    url = _instance_url(ct)
    frame_path = paths.frame_path(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID, 1)
    [meta] = client.get(f"{url}/metadata").json()
    bulk = next(e["BulkDataURI"] for e in meta.values() if "bulkdata/" in e.get("BulkDataURI", ""))
    bulk_url = f"/dicomweb/studies/{ct.StudyInstanceUID}/{bulk}"
    metadata_url = f"/dicomweb/studies/{ct.StudyInstanceUID}/metadata"
    asked = [
        (f"{url}/frames/1", {}),
        (f"{url}/frames/1", {"Range": "bytes=10-"}),
        (bulk_url, {}),
        (metadata_url, {"Accept-Encoding": "gzip"}),
    ]
    cached = [client.get(u, headers=h) for u, h in asked]
    reader = ArchiveReader(Archive(archive))
    try:
        frame = reader.locate(frame_path)
    finally:
        reader.close()
    for file in archive.rglob("*"):
        if file.is_file():
            evict(file)
    assert frame.read_cached() is None
    for (u, h), before in zip(asked, cached, strict=True):
        answer = client.get(u, headers=h)
        assert (answer.status_code, answer.content) == (before.status_code, before.content), u
        assert answer.headers["etag"] == before.headers["etag"]
    assert client.get(f"{url}/frames/1").content == stored(archive, frame_path)


def test_bulkdata_multipart_and_single_part(client: TestClient, archive: Path) -> None:
    ct = _ds("CT_small.dcm")
    [meta] = client.get(f"{_instance_url(ct)}/metadata").json()
    uris = [e["BulkDataURI"] for e in meta.values() if "BulkDataURI" in e]
    bulk = [u for u in uris if u.startswith("bulkdata/")]
    assert bulk, "CT_small holds bulk data"
    relative = f"studies/{ct.StudyInstanceUID}/{bulk[0]}"
    body = stored(archive, relative)
    assert client.get(f"/dicomweb/{relative}").content == body
    single = client.get(f"/dicomweb/{relative}", params={"accept": "application/octet-stream"})
    assert single.content == multipart.unwrap(body)[1]


def test_qido_sequence_paths(client: TestClient) -> None:
    j2k = _ds("JPEG2000.dcm")
    referenced = j2k.SourceImageSequence[0].ReferencedSOPInstanceUID
    for key in ("00082112.00081155", "SourceImageSequence.ReferencedSOPInstanceUID"):
        rows = client.get("/dicomweb/instances", params={key: referenced}).json()
        assert [r["00080018"]["Value"][0] for r in rows] == [j2k.SOPInstanceUID]
        assert rows[0]["00082112"]["Value"][0]["00081155"]["Value"] == [referenced]
    assert client.get("/dicomweb/instances", params={"00082112.00081155": "1.2.3"}).json() == []
    wildcard = client.get(
        "/dicomweb/instances", params={"SourceImageSequence.ReferencedSOPClassUID": ""}
    )
    assert len(wildcard.json()) == len(SOURCES)
    not_a_sequence = client.get("/dicomweb/instances", params={"PatientName.PatientID": "x"})
    assert not_a_sequence.status_code == 400
    included = client.get(
        "/dicomweb/instances",
        params={"SOPInstanceUID": j2k.SOPInstanceUID, "includefield": "00082112.00081155"},
    ).json()
    assert "00082112" in included[0]


def test_application_zip_of_a_study_and_series(client: TestClient) -> None:
    rle = _ds("SC_rgb_rle_2frame.dcm")
    jpeg = _ds("SC_rgb_jpeg_dcmtk.dcm")  # the same series
    study_url = f"/dicomweb/studies/{rle.StudyInstanceUID}"
    response = client.get(study_url, params={"accept": "application/zip"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{rle.StudyInstanceUID}.zip"'
    )
    with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
        assert bundle.testzip() is None
        names = bundle.namelist()
        files = {n: pydicom.dcmread(io.BytesIO(bundle.read(n))) for n in names}
    assert len(names) == 2 and all(n.endswith(".dcm") and n.count("/") == 2 for n in names)
    by_uid = {ds.SOPInstanceUID: ds for ds in files.values()}
    # As stored by default: each file in its original transfer syntax.
    assert by_uid[rle.SOPInstanceUID].file_meta.TransferSyntaxUID == RLE_LOSSLESS
    assert by_uid[rle.SOPInstanceUID].PixelData == rle.PixelData
    assert by_uid[jpeg.SOPInstanceUID].PixelData == jpeg.PixelData
    # The transfer syntax can be chosen as for multipart.
    series_url = f"{study_url}/series/{rle.SeriesInstanceUID}"
    native = client.get(series_url, headers={"Accept": f"application/zip; transfer-syntax={EVRLE}"})
    with zipfile.ZipFile(io.BytesIO(native.content)) as bundle:
        decoded = [pydicom.dcmread(io.BytesIO(bundle.read(n))) for n in bundle.namelist()]
    assert {ds.file_meta.TransferSyntaxUID for ds in decoded} == {EVRLE}
    got = {ds.SOPInstanceUID: ds for ds in decoded}
    assert np.array_equal(got[rle.SOPInstanceUID].pixel_array, rle.pixel_array)


@pytest.mark.parametrize("number", ["+1", "1_0", "١", "１", " 1", "1.0", "9" * 40])
def test_numbers_are_ascii_digits_only(client: TestClient, number: str) -> None:
    ds = pydicom.dcmread(get_testdata_file("SC_rgb_rle_2frame.dcm"))
    instance = (
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    for refused in (
        f"{instance}/frames/{number}",
        f"{instance}/frames/1,{number}",
        f"{instance}/frames/1?resolution={number},{number}",
        f"{instance}/rendered?viewport={number},{number}",
        f"{instance}/rendered?quality={number}",
    ):
        response = client.get(refused)
        assert response.status_code == 400, refused
        assert response.json()["status"] == 400
    whole = client.get(
        f"{instance}/frames/1", headers={"Range": f"bytes={number}-{number}".encode()}
    )
    assert whole.status_code == 200  # a Range header that is not one is ignored
