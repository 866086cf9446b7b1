"""Rendered resources and thumbnails: JPEG/PNG images, documents and video."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG4HP41, ExplicitVRLittleEndian, generate_uid
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.server.app import create_app
from tests.server.conftest import arrange

IMAGES = ["CT_small.dcm", "SC_rgb_rle_2frame.dcm", "OBXXXX1A.dcm", "RG1_UNCR.dcm"]
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
VIDEO = bytes(range(256)) * 64


def _base(ds: Dataset, sop_class: str, syntax: str) -> Dataset:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Rendered^Test"
    ds.Modality = "OT"
    return ds


def _pdf(folder: Path) -> Path:
    ds = _base(Dataset(), "1.2.840.10008.5.1.4.1.1.104.1", ExplicitVRLittleEndian)
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = PDF + b" " * (len(PDF) % 2)
    path = folder / "pdf.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _video(folder: Path) -> Path:
    ds = _base(Dataset(), "1.2.840.10008.5.1.4.1.1.77.1.4.1", MPEG4HP41)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 16, 16, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, "YBR_PARTIAL_420"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PlanarConfiguration = 0
    ds.PixelData = encapsulate([VIDEO])
    ds["PixelData"].is_undefined_length = True
    path = folder / "video.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, layout: str) -> Path:
    folder = tmp_path_factory.mktemp("rendered")
    sources = [get_testdata_file(n) for n in IMAGES] + [str(_pdf(folder)), str(_video(folder))]
    result = Converter(folder / "archive", ConvertOptions(workers=1)).convert(sources)
    assert result.ok, result
    return arrange(folder / "archive", layout)


@pytest.fixture(scope="module")
def client(archive: Path) -> Iterator[TestClient]:
    with TestClient(create_app(archive)) as test_client:
        yield test_client


def _url(ds: Dataset) -> str:
    return (
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def _image(body: bytes, media_type: str) -> np.ndarray:
    if media_type == "image/png":
        return np.asarray(imagecodecs.png_decode(body))
    return np.asarray(imagecodecs.jpeg8_decode(body))


def test_monochrome_window_from_metadata(client: TestClient) -> None:
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    response = client.get(f"{_url(ct)}/rendered", params={"accept": "image/png"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    got = _image(response.content, "image/png")
    assert got.shape == (ct.Rows, ct.Columns)
    values = ct.pixel_array * float(ct.RescaleSlope) + float(ct.RescaleIntercept)
    # CT_small has no window: the frame's own range is shown.
    assert "WindowCenter" not in ct
    low, high = values.min(), values.max()
    center, width = (low + high) / 2 + 0.5, high - low + 1
    expected = np.clip(((values - (center - 0.5)) / (width - 1) + 0.5) * 255, 0, 255)
    assert np.abs(got.astype(float) - np.rint(expected)).max() <= 1
    # The request's window wins; a second answer comes from the cache, identical.
    windowed = client.get(
        f"{_url(ct)}/frames/1/rendered", params={"accept": "image/png", "window": "0,100"}
    )
    assert not np.array_equal(_image(windowed.content, "image/png"), got)
    again = client.get(
        f"{_url(ct)}/frames/1/rendered", params={"accept": "image/png", "window": "0,100"}
    )
    assert again.content == windowed.content
    assert again.headers["etag"] == windowed.headers["etag"]


def test_viewport_quality_and_media_types(client: TestClient) -> None:
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    small = client.get(f"{_url(ct)}/rendered", params={"viewport": "32,16"})
    assert small.headers["content-type"] == "image/jpeg"
    assert _image(small.content, "image/jpeg").shape == (16, 16)
    low = client.get(f"{_url(ct)}/rendered", params={"quality": "10"})
    high = client.get(f"{_url(ct)}/rendered", params={"quality": "100"})
    assert len(low.content) < len(high.content)
    assert client.get(f"{_url(ct)}/rendered", headers={"Accept": "image/gif"}).status_code == 406
    assert client.get(f"{_url(ct)}/rendered", params={"window": "x"}).status_code == 400
    assert client.get(f"{_url(ct)}/rendered", params={"viewport": "0,0"}).status_code == 400


def test_colour_palette_and_monochrome1(client: TestClient) -> None:
    rgb = pydicom.dcmread(get_testdata_file("SC_rgb_rle_2frame.dcm"))
    second = client.get(f"{_url(rgb)}/frames/2/rendered", params={"accept": "image/png"})
    assert np.array_equal(_image(second.content, "image/png"), rgb.pixel_array[1])
    palette = pydicom.dcmread(get_testdata_file("OBXXXX1A.dcm"))
    answer = client.get(f"{_url(palette)}/rendered", params={"accept": "image/png"})
    expected = pydicom.pixels.apply_color_lut(palette.pixel_array, palette)
    assert np.array_equal(_image(answer.content, "image/png"), (expected >> 8).astype(np.uint8))
    inverted = pydicom.dcmread(get_testdata_file("RG1_UNCR.dcm"))
    shown = _image(
        client.get(f"{_url(inverted)}/rendered", params={"accept": "image/png"}).content,
        "image/png",
    )
    raw = inverted.pixel_array.astype(float)
    # MONOCHROME1: the brightest stored values are shown darkest.
    assert shown[raw == raw.max()].mean() < shown[raw == raw.min()].mean()


def test_thumbnails_at_every_level(client: TestClient) -> None:
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for url in (
        f"/dicomweb/studies/{ct.StudyInstanceUID}/thumbnail",
        f"/dicomweb/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}/thumbnail",
        f"/dicomweb/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}/rendered",
        f"{_url(ct)}/thumbnail",
        f"{_url(ct)}/frames/1/thumbnail",
    ):
        response = client.get(url, params={"accept": "image/jpeg"})
        assert response.status_code == 200, url
        assert response.headers["content-type"] == "image/jpeg"
        assert _image(response.content, "image/jpeg").shape[0] <= 256


def test_documents_and_video(client: TestClient, archive: Path) -> None:
    rows = client.get("/dicomweb/instances", params={"PatientName": "Rendered^Test"}).json()
    by_class = {r["00080016"]["Value"][0]: r for r in rows}
    pdf = by_class["1.2.840.10008.5.1.4.1.1.104.1"]
    video = by_class["1.2.840.10008.5.1.4.1.1.77.1.4.1"]

    def url(row: dict[str, dict[str, list[str]]]) -> str:
        return (
            f"/dicomweb/studies/{row['0020000D']['Value'][0]}/series/"
            f"{row['0020000E']['Value'][0]}/instances/{row['00080018']['Value'][0]}/rendered"
        )

    document = client.get(url(pdf))
    assert document.headers["content-type"] == "application/pdf"
    assert document.content.rstrip(b" ") == PDF
    clip = client.get(url(video))
    assert clip.headers["content-type"] == "video/mp4"
    assert clip.content == VIDEO
    part = client.get(url(video), headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == VIDEO[100:200]
    assert client.get(url(video).replace("/rendered", "/thumbnail")).status_code == 404
