"""Absolute RetrieveURLs and BulkDataURIs from a live server, used by dicomweb-client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.encaps import generate_frames
from starlette.requests import Request

from dicomweb_archive import tags
from dicomweb_archive.errors import InvalidUIDError
from dicomweb_archive.model.paths import ResourcePath, ResourceType
from dicomweb_archive.server.app import create_app
from dicomweb_archive.server.urls import (
    absolute_bulkdata_uris,
    absolute_retrieve_urls,
    service_root,
)
from tests.server.conftest import dataset
from tests.server.live import live_server


@pytest.fixture(scope="module")
def served(archive: Path) -> Iterator[str]:
    with live_server(create_app(archive)) as url:
        yield url


def test_dicomweb_client_follows_every_url_it_is_given(served: str) -> None:
    client = DICOMwebClient(served)
    rle = dataset("SC_rgb_rle_2frame.dcm")
    # Top-level searches name resources that exist.
    for level, search in [
        ("study", client.search_for_studies),
        ("series", client.search_for_series),
        ("instance", client.search_for_instances),
    ]:
        rows = search()
        assert rows, level
        for row in rows:
            [url] = row[tags.RetrieveURL]["Value"]
            assert url.startswith(f"{served}/studies/"), url
            head = httpx.head(url, headers={"Accept": "multipart/related; type=application/dicom"})
            assert head.status_code == 200, url
    # Bulk data, Pixel Data included, by the BulkDataURI as given.
    meta = client.retrieve_instance_metadata(
        rle.StudyInstanceUID, rle.SeriesInstanceUID, rle.SOPInstanceUID
    )
    pixel_uri = meta[tags.PixelData]["BulkDataURI"]
    assert pixel_uri == (
        f"{served}/studies/{rle.StudyInstanceUID}/series/{rle.SeriesInstanceUID}"
        f"/instances/{rle.SOPInstanceUID}/frames"
    )
    frames = client.retrieve_bulkdata(pixel_uri)
    assert frames == list(generate_frames(rle.PixelData, number_of_frames=2))
    ct = dataset("CT_small.dcm")
    ct_meta = client.retrieve_instance_metadata(
        ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID
    )
    assert client.retrieve_bulkdata(ct_meta[tags.PixelData]["BulkDataURI"]) == [ct.PixelData]


def _request(host: bytes, root_path: str = "/dicomweb") -> Request:
    return Request(
        {
            "type": "http",
            "scheme": "http",
            "method": "GET",
            "path": f"{root_path}/studies",
            "root_path": root_path,
            "headers": [(b"host", host)],
            "server": ("10.0.0.1", 8042),
            "query_string": b"",
        }
    )


def test_the_service_root_from_configuration_or_request() -> None:
    assert service_root(_request(b"viewer.example:8042")) == "http://viewer.example:8042/dicomweb"
    assert service_root(_request(b"[::1]:80")) == "http://[::1]:80/dicomweb"
    # No port in Host (dicomweb-client's way): the one the request came in on.
    assert service_root(_request(b"viewer.example")) == "http://viewer.example:8042/dicomweb"
    # A Host that is not a host name and port: the address the request came in on.
    for forged in [b"evil.example/x?", b'a"b', b"", b"a b"]:
        assert service_root(_request(forged)) == "http://10.0.0.1:8042/dicomweb"
    configured = service_root(_request(b"evil.example"), "https://pacs.example/dicomweb/")
    assert configured == "https://pacs.example/dicomweb"


def test_bulkdata_uris_become_absolute_below_their_study() -> None:
    stored = b'[{"7FE00010":{"BulkDataURI":"series/1.2/instances/1.3/frames","vr":"OW"}}]'
    assert absolute_bulkdata_uris(stored, 'http://h/s"/studies/1') == (
        b'[{"7FE00010":{"BulkDataURI":"http://h/s\\"/studies/1/series/1.2/instances/1.3/frames",'
        b'"vr":"OW"}}]'
    )


def test_a_retrieve_url_is_the_resource_path_below_the_root() -> None:
    uids = ["1.2.3", "1.2.3.4", "1.2.3.4.5"]
    for level in (ResourceType.STUDY, ResourceType.SERIES, ResourceType.INSTANCE):
        row = {
            tag: {"vr": "UI", "Value": [uid]}
            for tag, uid in zip(
                (tags.StudyInstanceUID, tags.SeriesInstanceUID, tags.SOPInstanceUID),
                uids,
                strict=True,
            )
        }
        row[tags.RetrieveURL] = {"vr": "UR", "Value": ["relative"]}
        absolute_retrieve_urls([row], level, "http://host/dicomweb")
        path = ResourcePath(level, *uids[: level.depth])
        assert row[tags.RetrieveURL]["Value"] == [f"http://host/dicomweb/{path}"]
    bad = {tags.StudyInstanceUID: {"vr": "UI", "Value": ["1.2.x"]}, tags.RetrieveURL: {}}
    with pytest.raises(InvalidUIDError):
        absolute_retrieve_urls([bad], ResourceType.STUDY, "http://host/dicomweb")
