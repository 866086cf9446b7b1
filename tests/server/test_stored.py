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
    bulk_url = next(
        e["BulkDataURI"] for e in meta.values() if "bulkdata/" in e.get("BulkDataURI", "")
    )
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


def test_reads_while_stow_replaces_the_instance(tmp_path: Path) -> None:
    """Readers of metadata and frames while STOW-RS replaces them: every answer whole."""
    import threading

    import httpx
    import orjson
    from pydicom.uid import generate_uid

    from dicomweb_archive import Converter, ConvertOptions
    from dicomweb_archive.server.app import create_app
    from tests.conftest import write_instance
    from tests.server.live import live_server

    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    versions = [
        write_instance(
            tmp_path / str(n),
            study=study,
            series=series,
            sop=sop,
            patient_name=name,
            instance_number=n,
            rows=64 * n,
            columns=64 * n,
        ).read_bytes()
        for n, name in [(1, "A^B"), (2, "Longer^Name^Than^Before")]
    ]
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([]).ok
    boundary = "race"
    bodies = [
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + v
        + f"\r\n--{boundary}--\r\n".encode()
        for v in versions
    ]
    stow_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    sizes = {64 * 64 * 2, 128 * 128 * 2}
    failures: list[str] = []
    done = threading.Event()
    with live_server(create_app(root, on_duplicate="overwrite")) as url:
        instance = f"{url}/studies/{study}/series/{series}/instances/{sop}"
        posted = httpx.post(
            f"{url}/studies", content=bodies[0], headers={"Content-Type": stow_type}
        )
        assert posted.status_code == 200

        def read() -> None:
            with httpx.Client(timeout=30) as client:
                while not done.is_set():
                    meta = client.get(f"{instance}/metadata", headers={"Accept-Encoding": "gzip"})
                    try:
                        raw = meta.read()  # httpx inflates: a truncated gzip raises
                        [document] = orjson.loads(raw)
                        assert document["00100010"]["Value"]
                    except Exception as exc:  # collected, reported below
                        failures.append(f"metadata {meta.status_code}: {exc!r}")
                    frame = client.get(
                        f"{instance}/frames/1", params={"accept": "application/octet-stream"}
                    )
                    if frame.status_code != 200 or len(frame.content) not in sizes:
                        failures.append(f"frame {frame.status_code}: {len(frame.content)} bytes")

        readers = [threading.Thread(target=read) for _ in range(3)]
        for thread in readers:
            thread.start()
        try:
            with httpx.Client(timeout=60) as writer:
                for round_ in range(16):
                    body = bodies[(round_ + 1) % 2]
                    answer = writer.post(
                        f"{url}/studies", content=body, headers={"Content-Type": stow_type}
                    )
                    assert answer.status_code == 200
        finally:
            done.set()
            for thread in readers:
                thread.join()
    assert not failures, failures[:5]
