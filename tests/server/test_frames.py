"""WADO-RS frames: negotiation, decoding, ranges and validators, the strict numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames
from starlette.testclient import TestClient

from dicomweb_archive.model import multipart, paths
from dicomweb_archive.server.app import create_app
from tests.server.conftest import EVRLE, converted, dataset, instance_url, parts, stored


def test_frames_single_part_and_decoding(client: TestClient) -> None:
    ct = dataset("CT_small.dcm")
    url = f"{instance_url(ct)}/frames/1"
    single = client.get(url, params={"accept": "application/octet-stream"})
    assert single.headers["content-type"] == f"application/octet-stream; transfer-syntax={EVRLE}"
    assert single.content == ct.PixelData
    # The accept parameter wins over the header; "undefined" is ignored.
    both = client.get(
        url, params={"accept": "application/octet-stream"}, headers={"Accept": "undefined"}
    )
    assert both.content == ct.PixelData
    jpeg = dataset("SC_rgb_jpeg_dcmtk.dcm")
    decoded = client.get(
        f"{instance_url(jpeg)}/frames/1", params={"accept": "application/octet-stream"}
    )
    pixels = np.frombuffer(decoded.content, dtype=np.uint8).reshape(jpeg.Rows, jpeg.Columns, 3)
    assert np.array_equal(pixels, jpeg.pixel_array)
    j2k = dataset("JPEG2000.dcm")
    j2k_url = f"{instance_url(j2k)}/frames/1"
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
        f"{instance_url(dataset('SC_rgb_rle_2frame.dcm'))}/frames/1,2",
        params={"accept": "application/octet-stream"},
    )
    assert multi.status_code == 406


def test_ranges_head_and_validators(client: TestClient, archive: Path) -> None:
    ct = dataset("CT_small.dcm")
    url = f"{instance_url(ct)}/frames/1"
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


def test_frames_ranges_and_negotiation(client: TestClient, archive: Path) -> None:
    ds = dataset("SC_rgb_rle_2frame.dcm")
    base = (
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/frames"
    )
    ohif = {"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}
    one = client.get(f"{base}/2", headers=ohif)
    assert one.status_code == 200
    assert one.headers["content-type"].startswith('multipart/related; type="image/dicom-rle"')
    frame = stored(
        archive, paths.frame_path(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, 2)
    )
    assert one.content == frame
    expected = list(generate_frames(ds.PixelData, number_of_frames=2))
    assert multipart.unwrap(one.content)[1] == expected[1]
    ranged = client.get(f"{base}/2", headers={**ohif, "Range": "bytes=0-99"})
    assert ranged.status_code == 206
    assert ranged.headers["content-range"] == f"bytes 0-99/{len(frame)}"
    assert ranged.content == frame[:100]
    both = client.get(f"{base}/1,2", headers=ohif)
    assert both.status_code == 200
    assert both.content.count(f"--{multipart.BOUNDARY}".encode()) == 3
    # Asked for in Explicit VR Little Endian, the RLE frame is decoded.
    evrle = {
        "Accept": 'multipart/related; type="application/octet-stream"; '
        "transfer-syntax=1.2.840.10008.1.2.1"
    }
    decoded = client.get(f"{base}/2", headers=evrle)
    headers, payload = multipart.unwrap(decoded.content)
    evrle_part = "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    assert headers["content-type"] == evrle_part
    assert payload == ds.pixel_array[1].tobytes()
    jpeg = {"Accept": 'multipart/related; type="image/jpeg"'}
    assert client.get(f"{base}/1", headers=jpeg).status_code == 406
    assert client.get(f"{base}/3", headers=ohif).status_code == 404
    assert client.get(f"{base}/0", headers=ohif).status_code == 400
    preflight = client.options(
        f"{base}/1",
        headers={
            "Origin": "http://viewer",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "accept,range",
        },
    )
    assert preflight.status_code == 200
    missing = client.get(f"{base}/9", headers={**ohif, "Origin": "http://viewer"})
    assert missing.headers["access-control-allow-origin"] == "*"


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


def test_frame_lists_are_bounded(client: TestClient) -> None:
    """Each frame once, at most MAX_FRAMES_PER_REQUEST: a short URL cannot ask for gigabytes."""
    url = f"{instance_url(dataset('SC_rgb_rle_2frame.dcm'))}/frames"
    repeated = client.get(f"{url}/{','.join(['1'] * 1000)}")
    assert repeated.status_code == 400
    assert repeated.json()["detail"] == "frame 1 is listed more than once"
    assert client.get(f"{url}/2,1,2").status_code == 400
    too_many = ",".join(str(n) for n in range(1, paths.MAX_FRAMES_PER_REQUEST + 2))
    long = client.get(f"{url}/{too_many}")
    assert long.status_code == 400
    assert f"at most {paths.MAX_FRAMES_PER_REQUEST} frames" in long.json()["detail"]
    assert client.get(f"{url}/2,1").status_code == 200


def test_every_representation_has_its_own_etag(client: TestClient) -> None:
    """An If-Range naming another representation's tag never gets a slice of this one."""
    url = f"{instance_url(dataset('CT_small.dcm'))}/frames/1"
    multi = client.get(url)
    single = client.get(url, params={"accept": "application/octet-stream"})
    assert multi.content != single.content
    assert multi.headers["etag"] != single.headers["etag"]
    crossed = client.get(
        url,
        params={"accept": "application/octet-stream"},
        headers={"Range": "bytes=0-9", "If-Range": multi.headers["etag"]},
    )
    assert (crossed.status_code, crossed.content) == (200, single.content)
    same = client.get(url, headers={"Range": "bytes=0-9", "If-Range": multi.headers["etag"]})
    assert (same.status_code, same.content) == (206, multi.content[:10])
    assert client.get(url, headers={"If-None-Match": single.headers["etag"]}).status_code == 200


def test_a_planted_symbolic_link_is_not_served(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A link in a study folder to a file of the machine answers 404, not the file."""
    root = converted(tmp_path_factory, "folders", ["CT_small.dcm"])
    ct = dataset("CT_small.dcm")
    secret = root.parent / "secret"
    secret.write_bytes(b"secret of the machine")
    frame = root / paths.frame_path(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID, 1)
    frame.unlink()
    frame.symlink_to(secret)
    url = f"{instance_url(ct)}/frames/1"
    with TestClient(create_app(root)) as client:
        answer = client.get(url, params={"accept": "application/octet-stream"})
        assert answer.status_code == 404
        assert b"secret of the machine" not in answer.content
        # A linked folder on the way is refused as well.
        frames = frame.parent
        frame.unlink()
        moved = root.parent / "frames"
        frames.rename(moved)
        (moved / "1").write_bytes(b"secret of the machine")
        frames.symlink_to(moved, target_is_directory=True)
        answer = client.get(url, params={"accept": "application/octet-stream"})
        assert answer.status_code == 404
        assert b"secret of the machine" not in answer.content


@pytest.fixture(scope="module")
def raw_archive(tmp_path_factory: pytest.TempPathFactory, layout: str) -> Path:
    """A CT series and a two-frame RLE image converted --frames raw, then given HTJ2K."""
    from dicomweb_archive import Converter, ConvertOptions
    from dicomweb_archive.demo.samples import write_ct_series
    from dicomweb_archive.transcode.transcoder import TranscodeOptions, Transcoder
    from tests.server.conftest import arrange

    folder = tmp_path_factory.mktemp("raw")
    sources = [str(p) for p in write_ct_series(folder / "ct", slices=2)]
    sources.append(get_testdata_file("SC_rgb_rle_2frame.dcm"))
    root = folder / "archive"
    assert Converter(root, ConvertOptions(workers=1, frames="raw")).convert(sources).ok
    assert Transcoder(root, TranscodeOptions(workers=1)).transcode().ok
    return arrange(root, layout)


def test_an_archive_of_raw_frames_is_served(raw_archive: Path) -> None:
    """--frames raw: the same answers as multipart storage, the bodies made when sent."""
    rle = dataset("SC_rgb_rle_2frame.dcm")
    base = f"{instance_url(rle)}/frames"
    expected = list(generate_frames(rle.PixelData, number_of_frames=2))
    with TestClient(create_app(raw_archive)) as client:
        one = client.get(f"{base}/2")
        assert one.status_code == 200
        assert one.headers["content-type"].startswith('multipart/related; type="image/dicom-rle"')
        [(headers, payload)] = [multipart.unwrap(one.content)]
        assert headers["content-type"] == "image/dicom-rle; transfer-syntax=1.2.840.10008.1.2.5"
        assert payload == expected[1]
        ranged = client.get(f"{base}/2", headers={"Range": "bytes=0-9"})
        assert (ranged.status_code, ranged.content) == (206, one.content[:10])
        single = client.get(f"{base}/1", params={"accept": "image/dicom-rle"})
        assert single.content == expected[0]
        both = client.get(f"{base}/1,2")
        assert [p for _, p in parts(both.content)] == expected
        decoded = client.get(f"{base}/1", params={"accept": "application/octet-stream"})
        assert decoded.status_code == 200 and len(decoded.content) == rle.Rows * rle.Columns * 3
        assert client.get(f"{base}/1/rendered").status_code == 200
        assert client.get(f"{instance_url(rle)}/thumbnail").status_code == 200
        assert client.get(f"{instance_url(rle)}/frames").status_code == 200
        # The HTJ2K alternate, stored bare as well.
        [series] = client.get("/dicomweb/series", params={"Modality": "CT"}).json()
        study, uid = series["0020000D"]["Value"][0], series["0020000E"]["Value"][0]
        ct = client.get(f"/dicomweb/studies/{study}/series/{uid}/instances").json()[0]
        ct_url = f"/dicomweb/studies/{study}/series/{uid}/instances/{ct['00080018']['Value'][0]}"
        htj2k = client.get(f"{ct_url}/htj2k/1")
        assert htj2k.status_code == 200
        assert multipart.unwrap(htj2k.content)[0]["content-type"].startswith("image/jphc")
        assert client.get(f"{ct_url}/htj2kThumbnail/1").status_code == 200
        assert client.get(f"{ct_url}/frames/1/rendered").status_code == 200
