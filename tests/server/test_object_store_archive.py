"""dwa serve over an archive in a real S3 API (moto): STOW-RS stores into the bucket,
and what it stored is retrieved from it."""

from __future__ import annotations

from pathlib import Path

from pydicom.data import get_testdata_file
from starlette.testclient import TestClient

from dicomweb_archive.model import multipart
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store.objectstore import ObjectStore

MULTIPART = 'multipart/related; type="application/dicom"; boundary=b'
ACCEPT = {"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}


def test_stow_into_a_bucket_then_read_it_back(s3_url: str) -> None:
    ct = Path(str(get_testdata_file("CT_small.dcm"))).read_bytes()
    body = b"--b\r\nContent-Type: application/dicom\r\n\r\n" + ct + b"\r\n--b--\r\n"
    with TestClient(create_app(archive_root=s3_url)) as client:
        stored = client.post("/dicomweb/studies", content=body, headers={"Content-Type": MULTIPART})
        assert stored.status_code == 200, stored.text
        [study] = client.get("/dicomweb/studies").json()
        uid = study["0020000D"]["Value"][0]
        [meta] = client.get(f"/dicomweb/studies/{uid}/metadata").json()
        frames = meta["7FE00010"]["BulkDataURI"].partition("/dicomweb/")[2]
        frame = client.get(f"/dicomweb/{frames}/1", headers=ACCEPT)
        assert frame.status_code == 200
    objects = ObjectStore(s3_url)
    assert frame.content == objects.read(f"{frames}/1")
    _, payload = multipart.unwrap(frame.content)
    assert len(payload) == 128 * 128 * 2
    assert objects.exists(f"studies/{uid}/metadata.gz")  # the write-behind flushed on shutdown
