"""HTJ2K alternates served the ways viewers ask for them (client-contract §4–§6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pytest
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.codec import codestream
from dicomweb_archive.demo.samples import write_ct_series
from dicomweb_archive.model import multipart
from dicomweb_archive.server.app import create_app
from dicomweb_archive.transcode.transcoder import TranscodeOptions, Transcoder
from tests.server.conftest import arrange, parts

RPCL = "1.2.840.10008.1.2.4.202"
JPHC_PART = f"image/jphc; transfer-syntax={RPCL}"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_ct_series(tmp_path_factory.mktemp("ct"), slices=2)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, source: list[Path], layout: str) -> Path:
    root = tmp_path_factory.mktemp("htj2k") / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([str(p) for p in source]).ok
    assert Transcoder(root, TranscodeOptions(workers=1)).transcode().ok
    return arrange(root, layout)


@pytest.fixture(scope="module")
def client(archive: Path) -> Iterator[TestClient]:
    with TestClient(create_app(archive)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def ct(source: list[Path]) -> pydicom.Dataset:
    return pydicom.dcmread(source[0])


def _url(ds: pydicom.Dataset, tail: str) -> str:
    return (
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}/{tail}"
    )


def test_frames_stay_as_stored_unless_htj2k_is_asked_for(
    client: TestClient, ct: pydicom.Dataset
) -> None:
    plain = client.get(_url(ct, "frames/1"))
    assert multipart.unwrap(plain.content)[1] == ct.PixelData
    single = client.get(_url(ct, "frames/1"), params={"accept": "image/jhc"})
    assert single.status_code == 200
    assert single.headers["content-type"] == JPHC_PART
    assert np.array_equal(imagecodecs.htj2k_decode(single.content), ct.pixel_array)
    parsed = codestream.parse(single.content)
    assert (parsed.progression, parsed.reversible, parsed.has_tlm) == ("RPCL", True, True)
    header = {"Accept": 'multipart/related; type="image/jphc"'}
    wrapped = client.get(_url(ct, "frames/1"), headers=header)
    headers, payload = multipart.unwrap(wrapped.content)
    assert headers["content-type"] == JPHC_PART and payload == single.content
    assert client.get(_url(ct, "frames/1"), params={"accept": "image/jls"}).status_code == 406


def test_alternate_frames_path_with_ranges(client: TestClient, ct: pydicom.Dataset) -> None:
    full = client.get(_url(ct, "htj2k/1"))
    assert full.headers["content-type"].startswith('multipart/related; type="image/jphc"')
    headers, codestream_bytes = multipart.unwrap(full.content)
    assert headers["content-type"] == JPHC_PART
    assert client.get(_url(ct, "HTJ2K/1")).content == full.content
    assert client.get(_url(ct, "lossy/1")).content == full.content
    first = client.get(_url(ct, "htj2k/1"), headers={"Range": "bytes=0-65535"})
    assert first.status_code == 206
    assert first.headers["content-range"] == f"bytes 0-65535/{len(full.content)}"
    rest = client.get(_url(ct, "htj2k/1"), headers={"Range": "bytes=65536-"})
    assert first.content + rest.content == full.content
    # The first 64 KiB hold a lower-resolution image.
    prefix = first.content[first.content.index(b"\r\n\r\n") + 4 :]
    low = imagecodecs.htj2k_decode(prefix + b"\xff\xd9", skipres=2)
    assert low.shape == (128, 128)
    assert client.get(_url(ct, "nosuchpath/1")).status_code == 404


def test_reduced_resolutions_are_cut_from_the_codestream(
    client: TestClient, ct: pydicom.Dataset
) -> None:
    full = multipart.unwrap(client.get(_url(ct, "htj2k/1")).content)[1]
    thumbnail = client.get(_url(ct, "htj2kThumbnail/1"))
    headers, cut = multipart.unwrap(thumbnail.content)
    assert headers["content-type"] == JPHC_PART
    assert len(cut) < len(full) // 4 and full.startswith(cut[:-2]) and cut.endswith(b"\xff\xd9")
    levels = codestream.parse(full).levels
    image = imagecodecs.htj2k_decode(cut, skipres=levels - 3)  # 512 / 2**2
    assert image.shape == (128, 128)
    reference = ct.pixel_array[::4, ::4].astype(float)
    assert np.corrcoef(image.astype(float).ravel(), reference.ravel())[0, 1] > 0.9
    bigger = client.get(
        _url(ct, "frames/1"), params={"accept": "image/jhc", "resolution": "256,256"}
    )
    assert bigger.headers["content-type"] == JPHC_PART
    assert len(cut) < len(bigger.content) < len(full)
    assert client.get(_url(ct, "htj2k/1"), params={"resolution": "x"}).status_code == 400


def test_a_thumbnail_with_and_without_accept_has_two_etags(
    client: TestClient, ct: pydicom.Dataset
) -> None:
    """Multipart and single part of one cut codestream are two bodies, two validators."""
    url = _url(ct, "htj2kThumbnail/1")
    multi = client.get(url)
    single = client.get(url, params={"accept": "image/jphc"})
    assert multi.content != single.content
    assert multi.headers["etag"] != single.headers["etag"]
    crossed = client.get(
        url,
        params={"accept": "image/jphc"},
        headers={"Range": "bytes=0-9", "If-Range": multi.headers["etag"]},
    )
    assert (crossed.status_code, crossed.content) == (200, single.content)


def test_a_lossy_alternate_leaves_lossless_htj2k_to_be_made(
    tmp_path: Path, source: list[Path]
) -> None:
    """After ``--lossy``, a lossless HTJ2K request gets lossless codestreams made from
    the frames (never the lossy ones); the lossy alternate answers its own syntax."""
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([str(p) for p in source]).ok
    assert Transcoder(root, TranscodeOptions(workers=1)).transcode().ok
    assert Transcoder(root, TranscodeOptions(psnr=50, workers=1)).transcode().ok
    ds = pydicom.dcmread(source[0])
    with TestClient(create_app(root)) as client:
        for accept in ("image/jphc", f"image/jphc; transfer-syntax={RPCL}"):
            lossless = client.get(_url(ds, "frames/1"), headers={"Accept": accept})
            assert lossless.status_code == 200
            assert lossless.headers["content-type"] == JPHC_PART
            decoded = imagecodecs.htj2k_decode(lossless.content)
            assert np.array_equal(decoded.view(np.int16), ds.pixel_array)
        lossy = "image/jphc; transfer-syntax=1.2.840.10008.1.2.4.203"
        answer = client.get(_url(ds, "frames/1"), headers={"Accept": lossy})
        assert answer.status_code == 200
        assert "1.2.840.10008.1.2.4.203" in answer.headers["content-type"]
        assert answer.content != lossless.content


def test_htj2k_is_made_where_none_is_stored(tmp_path: Path, source: list[Path]) -> None:
    """No ``dwa transcode`` run: HTJ2K Lossless is encoded on request, once, and
    multipart answers carry one codestream per frame."""
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([str(p) for p in source]).ok
    ds = pydicom.dcmread(source[0])
    with TestClient(create_app(root)) as client:
        assert (
            client.get(_url(ds, "frames/1"))
            .headers["content-type"]
            .startswith('multipart/related; type="application/octet-stream"')
        )  # the stored frames stay the default
        single = client.get(_url(ds, "frames/1"), params={"accept": "image/jphc"})
        assert single.status_code == 200 and single.headers["content-type"] == JPHC_PART
        parsed = codestream.parse(single.content)
        assert parsed.reversible and parsed.has_tlm and parsed.resolution_prefix(0) is not None
        assert np.array_equal(
            imagecodecs.htj2k_decode(single.content).view(np.int16), ds.pixel_array
        )
        again = client.get(_url(ds, "frames/1"), params={"accept": "image/jphc"})
        assert (again.content, again.headers["etag"]) == (single.content, single.headers["etag"])
        made = list((root / ".dwa" / "cache" / "htj2k").rglob("*"))
        assert len([p for p in made if p.is_file()]) == 1
        multi = client.get(
            _url(ds, "htj2k/1"),
            headers={"Accept": 'multipart/related; type="image/jphc"'},
        )
        assert multi.status_code == 200
        [(headers, payload)] = parts(multi.content)
        assert payload == single.content


def test_the_seed_jpegls_thumbnail(client: TestClient, ct: pydicom.Dataset) -> None:
    """Seed 000's framesPath '/jlsThumbnail/' with its urlArguments, as OHIF sends them."""
    url = _url(ct, "jlsThumbnail/1")
    params = {"accept": "image/jls;transferSyntax=1.2.4.10008.1.2.81", "resolution": "256,256"}
    answer = client.get(url, params=params)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/jls; transfer-syntax=1.2.840.10008.1.2.4.80"
    # The malformed UID is answered in image/jls's default syntax, with a warning.
    assert answer.headers["warning"].startswith("299 ")
    image = imagecodecs.jpegls_decode(answer.content)
    assert image.shape == (256, 256)
    reference = ct.pixel_array[::2, ::2]
    assert np.array_equal(image.view(np.int16), reference)
    assert client.get(url, params=params).content == answer.content  # cached, the same
    # Without arguments: a multipart JPEG-LS thumbnail of THUMBNAIL_SIZE.
    default = client.get(url)
    assert default.headers["content-type"].startswith('multipart/related; type="image/jls"')
    [small] = [payload for _, payload in parts(default.content)]
    assert imagecodecs.jpegls_decode(small).shape == (128, 128)
    # resolution= on frames/ answers a reduced JPEG-LS image when JPEG-LS is asked for.
    reduced = client.get(
        _url(ct, "frames/1"), params={"accept": "image/jls", "resolution": "64,64"}
    )
    assert imagecodecs.jpegls_decode(reduced.content).shape == (64, 64)
    # camelCase transferSyntax names a syntax like transfer-syntax.
    named = client.get(_url(ct, "frames/1"), params={"accept": f"image/jphc;transferSyntax={RPCL}"})
    assert named.headers["content-type"] == JPHC_PART and "warning" not in named.headers
