"""WADO-RS retrieve of whole instances: multipart, single part, application/zip."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.encaps import generate_frames
from starlette.testclient import TestClient

from tests.server.conftest import EVRLE, SOURCES, dataset, instance_url, parts

RLE_LOSSLESS = "1.2.840.10008.1.2.5"


@pytest.mark.parametrize("name", SOURCES)
def test_retrieve_instance_default_is_explicit_little_endian(client: TestClient, name: str) -> None:
    source = dataset(name)
    response = client.get(
        instance_url(source), headers={"Accept": 'multipart/related; type="application/dicom"'}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        'multipart/related; type="application/dicom"'
    )
    [(headers, payload)] = parts(response.content)
    assert headers["content-type"] == f"application/dicom; transfer-syntax={EVRLE}"
    got = pydicom.dcmread(io.BytesIO(payload))
    assert got.file_meta.TransferSyntaxUID == EVRLE
    assert got.SOPInstanceUID == source.SOPInstanceUID
    assert got.PatientName == source.PatientName
    expected = source.pixel_array if name != "emri_small_jpeg_ls_lossless.dcm" else None
    if expected is None:  # pydicom has no JPEG-LS decoder here: the native original
        expected = dataset("emri_small.dcm").pixel_array
    assert np.array_equal(got.pixel_array, expected)
    if source.PhotometricInterpretation.startswith("YBR") and "JPEG" in name.upper():
        assert got.PhotometricInterpretation == "RGB"


def test_retrieve_instance_as_stored(client: TestClient) -> None:
    source = dataset("JPEG2000.dcm")
    response = client.get(
        instance_url(source),
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
    )
    [(headers, payload)] = parts(response.content)
    assert headers["content-type"].endswith(f"transfer-syntax={source.file_meta.TransferSyntaxUID}")
    got = pydicom.dcmread(io.BytesIO(payload))
    frames = generate_frames(got.PixelData, number_of_frames=1)
    assert next(frames) == next(generate_frames(source.PixelData, number_of_frames=1))
    single = client.get(instance_url(source), params={"accept": "application/dicom"})
    assert single.headers["content-type"] == "application/dicom"
    assert pydicom.dcmread(io.BytesIO(single.content)).file_meta.TransferSyntaxUID == EVRLE
    jpeg = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    assert client.get(instance_url(source), headers={"Accept": jpeg}).status_code == 406
    assert client.get(instance_url(source), headers={"Accept": "image/png"}).status_code == 406


def test_retrieve_study_series_with_dicomweb_client(live: str) -> None:
    web = DICOMwebClient(live)
    rle = dataset("SC_rgb_rle_2frame.dcm")
    jpeg = dataset("SC_rgb_jpeg_dcmtk.dcm")  # the same series as the RLE image
    series = web.retrieve_series(rle.StudyInstanceUID, rle.SeriesInstanceUID)
    by_uid = {i.SOPInstanceUID: i for i in series}
    assert set(by_uid) == {rle.SOPInstanceUID, jpeg.SOPInstanceUID}
    assert np.array_equal(by_uid[rle.SOPInstanceUID].pixel_array, rle.pixel_array)
    study = web.retrieve_study(rle.StudyInstanceUID)
    assert sorted(i.SOPInstanceUID for i in study) == sorted(by_uid)
    ct = dataset("CT_small.dcm")
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


@pytest.mark.usefixtures("moving_clock")
def test_application_zip_is_the_same_bytes_on_every_request(client: TestClient) -> None:
    """Whenever it is asked for (client-contract §4): the clock moves 2 s between answers."""
    rle = dataset("SC_rgb_rle_2frame.dcm")
    url = f"/dicomweb/studies/{rle.StudyInstanceUID}"
    params = {"accept": "application/zip; transfer-syntax=*"}
    first, second = (client.get(url, params=params) for _ in range(2))
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.content == second.content
    with zipfile.ZipFile(io.BytesIO(first.content)) as bundle:
        assert {i.date_time for i in bundle.infolist()} == {(1980, 1, 1, 0, 0, 0)}


@pytest.mark.usefixtures("moving_clock")  # its two ZIPs compared below, 2 s apart
def test_application_zip_of_a_study_and_series(client: TestClient) -> None:
    rle = dataset("SC_rgb_rle_2frame.dcm")
    jpeg = dataset("SC_rgb_jpeg_dcmtk.dcm")  # the same series
    study_url = f"/dicomweb/studies/{rle.StudyInstanceUID}"
    response = client.get(study_url, params={"accept": "application/zip; transfer-syntax=*"})
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
    # With transfer-syntax=*: each file in its original transfer syntax.
    assert by_uid[rle.SOPInstanceUID].file_meta.TransferSyntaxUID == RLE_LOSSLESS
    assert by_uid[rle.SOPInstanceUID].PixelData == rle.PixelData
    assert by_uid[jpeg.SOPInstanceUID].PixelData == jpeg.PixelData
    # The same files as multipart: Explicit VR Little Endian by default, as named.
    series_url = f"{study_url}/series/{rle.SeriesInstanceUID}"
    default = client.get(series_url, params={"accept": "application/zip"})
    native = client.get(series_url, headers={"Accept": f"application/zip; transfer-syntax={EVRLE}"})
    assert default.content == native.content
    with zipfile.ZipFile(io.BytesIO(native.content)) as bundle:
        decoded = [pydicom.dcmread(io.BytesIO(bundle.read(n))) for n in bundle.namelist()]
    assert {ds.file_meta.TransferSyntaxUID for ds in decoded} == {EVRLE}
    got = {ds.SOPInstanceUID: ds for ds in decoded}
    assert np.array_equal(got[rle.SOPInstanceUID].pixel_array, rle.pixel_array)
