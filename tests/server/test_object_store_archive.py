"""dwa serve over an archive in a real S3 API (moto): STOW-RS stores into the bucket,
and what it stored is retrieved from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.demo.samples import write_ct_series
from dicomweb_archive.model import multipart
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store import s3requests
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


def test_a_retrieve_measures_each_instance_in_one_listing(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its validators need every stored file's version: an instance's files are
    measured by one listing of its folder, and checked once read by another,
    not by a request per file (a study of single-frame CT slices: 3 each)."""
    slices = write_ct_series(tmp_path / "ct", slices=6, rows=32, columns=32)
    assert Converter(s3_url, ConvertOptions(workers=1)).convert([str(tmp_path / "ct")]).ok
    study = pydicom.dcmread(slices[0], stop_before_pixels=True).StudyInstanceUID
    calls: list[str] = []
    for name in ("head", "tree"):
        real = getattr(s3requests, name)

        def counted(*args: Any, real: Any = real, name: str = name) -> Any:
            calls.append(name)
            return real(*args)

        monkeypatch.setattr(s3requests, name, counted)
    accept = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
    with TestClient(create_app(archive_root=s3_url)) as client:
        client.get("/dicomweb/studies")  # the server's own look at the archive first
        calls.clear()
        first = client.get(f"/dicomweb/studies/{study}", headers=accept)
        assert first.status_code == 200
        assert (calls.count("tree"), calls.count("head")) == (2 * len(slices), 2)  # the listing
        again = client.get(f"/dicomweb/studies/{study}", headers=accept)
        assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
