"""WADO-RS metadata: gzip passed through, inflated for the others, validators."""

from __future__ import annotations

import gzip
from pathlib import Path

from starlette.testclient import TestClient

from dicomweb_archive.model import paths
from tests.server.conftest import dataset, stored


def test_metadata_gzip_with_absolute_bulkdata_uris(client: TestClient, archive: Path) -> None:
    """The stored document, its study-relative BulkDataURIs made absolute, gzipped or not."""
    ct = dataset("CT_small.dcm")
    url = f"/dicomweb/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}/metadata"
    body = stored(archive, paths.series_metadata(ct.StudyInstanceUID, ct.SeriesInstanceUID))
    study_url = f"http://testserver/dicomweb/studies/{ct.StudyInstanceUID}/"
    expected = gzip.decompress(body).replace(
        b'"BulkDataURI":"', b'"BulkDataURI":"' + study_url.encode()
    )
    assert expected != gzip.decompress(body)
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert plain.content == expected
    assert "content-encoding" not in plain.headers
    zipped = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == expected  # inflated by the client
    assert client.get(url, headers={"Accept": "application/dicom+xml"}).status_code == 406
    assert client.get(url.replace(ct.SeriesInstanceUID, "1.2.3")).status_code == 404
    assert client.get(url.replace(ct.SeriesInstanceUID, "1..2")).status_code == 400
    assert client.get(url.replace(ct.SeriesInstanceUID, "%2E%2E")).status_code in (400, 404)


def test_metadata_validators_per_encoding(client: TestClient) -> None:
    ct = dataset("CT_small.dcm")
    meta_url = f"/dicomweb/studies/{ct.StudyInstanceUID}/metadata"
    for encoding in ("gzip", "identity"):
        first = client.get(meta_url, headers={"Accept-Encoding": encoding})
        again = client.get(
            meta_url, headers={"Accept-Encoding": encoding, "If-None-Match": first.headers["etag"]}
        )
        assert again.status_code == 304
    gz = client.get(meta_url, headers={"Accept-Encoding": "gzip"}).headers["etag"]
    assert gz != client.get(meta_url, headers={"Accept-Encoding": "identity"}).headers["etag"]
