"""WADO-RS bulk data: the stored body, or its payload alone."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from dicomweb_archive.model import multipart
from tests.server.conftest import dataset, instance_url, stored


def test_bulkdata_multipart_and_single_part(client: TestClient, archive: Path) -> None:
    ct = dataset("CT_small.dcm")
    [meta] = client.get(f"{instance_url(ct)}/metadata").json()
    study_url = f"http://testserver/dicomweb/studies/{ct.StudyInstanceUID}/"
    uris = [e["BulkDataURI"].removeprefix(study_url) for e in meta.values() if "BulkDataURI" in e]
    bulk = [u for u in uris if u.startswith("bulkdata/")]
    assert bulk, "CT_small holds bulk data"
    relative = f"studies/{ct.StudyInstanceUID}/{bulk[0]}"
    body = stored(archive, relative)
    assert client.get(f"/dicomweb/{relative}").content == body
    single = client.get(f"/dicomweb/{relative}", params={"accept": "application/octet-stream"})
    assert single.content == multipart.unwrap(body)[1]
