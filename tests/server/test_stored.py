"""Stored bodies read on the event loop from the page cache, else by a worker thread."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from dicomweb_archive.model import multipart, paths
from dicomweb_archive.server.stored import Uncached, read, stored_part
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.slices import Slice
from tests.server.conftest import dataset, instance_url, stored
from tests.store.test_slices import evict


def test_stored_resources_not_in_the_page_cache(client: TestClient, archive: Path) -> None:
    """Read by a worker thread instead of on the event loop: the same answers."""
    ct = dataset("CT_small.dcm")
    url = instance_url(ct)
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
    reader = open_archive(archive)
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


def test_stored_part_reads_the_part_header(tmp_path: Path) -> None:
    content_type = "image/jphc; transfer-syntax=1.2.840.10008.1.2.4.202"
    body = multipart.header(content_type) + b"codestream" + multipart.TRAILER
    file = tmp_path / "1"
    file.write_bytes(body)
    whole = Slice.whole(file)
    media_type, syntax, payload = stored_part(whole)
    assert (media_type, syntax) == ("image/jphc", "1.2.840.10008.1.2.4.202")
    assert payload.read() == b"codestream"
    assert stored_part(whole, head=body[:1024])[2] == payload
    assert read(whole, inline=False) == body
    evict(file)
    with pytest.raises(Uncached):  # the event loop never waits for the disk
        read(whole, inline=True)
    assert read(whole, inline=False) == body
    assert read(whole, inline=True) == body
