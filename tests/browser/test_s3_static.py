"""A bucket behind deploy/nginx-s3.conf answers as a static DICOMweb host: the headers
are the ones dwa stored with each object (no browser needed)."""

from __future__ import annotations

import gzip

import httpx
import orjson

from dicomweb_archive.media import DICOM_JSON
from dicomweb_archive.model import multipart
from tests.browser.conftest import Study


def test_documents_frames_and_ranges_come_with_their_stored_headers(
    s3_static_archive: str, study: Study
) -> None:
    root = s3_static_archive
    with httpx.Client(headers={"Accept-Encoding": "gzip"}) as client:
        listing = client.get(f"{root}/studies?limit=25&offset=0")
        assert listing.status_code == 200
        assert listing.headers["content-type"] == DICOM_JSON
        assert listing.headers["content-encoding"] == "gzip"
        assert listing.headers["cache-control"] == "no-cache"
        assert listing.headers["access-control-allow-origin"] == "*"
        [row] = listing.json()  # httpx inflates, as a browser does
        assert row["0020000D"]["Value"] == [study.study_uid]

        series = client.get(f"{root}/studies/{study.study_uid}/series").json()
        se = series[0]["0020000E"]["Value"][0]
        metadata = client.get(f"{root}/studies/{study.study_uid}/series/{se}/metadata")
        assert metadata.headers["content-type"] == DICOM_JSON
        instances = metadata.json()
        assert len(instances) == study.slices
        sop = instances[0]["00080018"]["Value"][0]
        frame_url = f"{root}/studies/{study.study_uid}/series/{se}/instances/{sop}/frames/1"
        frame = client.get(frame_url)
        assert frame.status_code == 200
        assert frame.headers["content-type"] == multipart.response_content_type(
            "application/octet-stream"
        )
        assert "content-encoding" not in frame.headers
        _, payload = multipart.unwrap(frame.content)
        assert len(payload) == 256 * 256 * 2
        part = client.get(frame_url, headers={"Range": "bytes=10-109"})
        assert part.status_code == 206 and part.content == frame.content[10:110]
        assert part.headers["content-range"] == f"bytes 10-109/{len(frame.content)}"

        # The stored bytes whatever the client accepts (every browser takes gzip).
        with client.stream(
            "GET", f"{root}/studies", headers={"Accept-Encoding": "identity"}
        ) as raw:
            assert raw.headers["content-encoding"] == "gzip"
            assert orjson.loads(gzip.decompress(b"".join(raw.iter_raw()))) == [row]
        for missing in ("/manifest.json", "/dicomweb/manifest.json", "/dicomweb/studies/1.2/x"):
            assert client.get(root.removesuffix("/dicomweb") + missing).status_code == 404
        assert client.get(f"{root}/studies/1.2.3/metadata").status_code in (403, 404)
