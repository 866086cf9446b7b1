"""deploy/nginx.conf serves a converted archive the way OHIF and dicomweb-client need.

A real nginx (see conftest.py) serves an archive converted from real files:
native CT and MR, a two-frame RLE image and a JPEG 2000 image.  Checked with raw
HTTP (exact headers and bytes) and with the Python ``dicomweb-client``; frames
are compared byte for byte with pydicom's own frame extraction.
"""

from __future__ import annotations

import gzip
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.encaps import generate_frames

from dicomweb_archive import uids
from dicomweb_archive.model import multipart, paths

from .conftest import SOURCE_NAMES, NginxServer, Response

pytestmark = pytest.mark.integration

JSON_TYPE = "application/dicom+json"
MULTIPART_TYPE = (
    f'multipart/related; type="application/octet-stream"; boundary={multipart.BOUNDARY}'
)
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Accept, Authorization, Range, Content-Type",
    "Access-Control-Expose-Headers": (
        "Content-Range, Content-Length, Content-Type, Content-Encoding"
    ),
    "Cross-Origin-Resource-Policy": "cross-origin",
}
#: What OHIF sends (client-contract §2, §10.1).
OHIF_JSON_ACCEPT = "application/dicom+json"
OHIF_OLD_METADATA_ACCEPT = (
    "application/dicom+json, multipart/related; type=application/octet-stream; transfer-syntax=*"
)
OHIF_FRAME_ACCEPTS = (
    "multipart/related; type=application/octet-stream; transfer-syntax=*",
    'multipart/related; type="application/octet-stream"; transfer-syntax="*"',
)
BROWSER_ENCODING = "gzip, deflate, br, zstd"


# -- helpers -------------------------------------------------------------------------


def uid_path(ds: pydicom.Dataset) -> tuple[str, str, str]:
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def number_of_frames(ds: pydicom.Dataset) -> int:
    return int(ds.get("NumberOfFrames", 1) or 1)


def pydicom_frames(ds: pydicom.Dataset) -> list[bytes]:
    """Every frame of ``ds`` as pydicom extracts it."""
    count = number_of_frames(ds)
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        return list(generate_frames(ds.PixelData, number_of_frames=count))
    assert ds.file_meta.TransferSyntaxUID.is_little_endian
    length = ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
    return [ds.PixelData[i * length : (i + 1) * length] for i in range(count)]


def frame_path(ds: pydicom.Dataset, number: int) -> str:
    return paths.frame_path(*uid_path(ds), number)


def stored(server: NginxServer, relative: str) -> bytes:
    return (server.archive / relative).read_bytes()


def stored_json(server: NginxServer, relative: str) -> Any:
    return json.loads(gzip.decompress(stored(server, relative)))


def assert_cors(response: Response) -> None:
    for name, value in CORS.items():
        assert response.header(name) == value, (name, response.status)


def json_documents(ds: pydicom.Dataset) -> dict[str, tuple[str, str]]:
    """URL (under the service root) and stored file of every JSON resource of ``ds``."""
    st, se, sop = uid_path(ds)
    return {
        "studies": ("/studies", paths.STUDIES_INDEX),
        "series": (f"/studies/{st}/series", paths.series_index(st)),
        "instances": (
            f"/studies/{st}/series/{se}/instances",
            paths.instances_index(st, se),
        ),
        "study-metadata": (f"/studies/{st}/metadata", paths.study_metadata(st)),
        "series-metadata": (
            f"/studies/{st}/series/{se}/metadata",
            paths.series_metadata(st, se),
        ),
        "instance-metadata": (
            f"/studies/{st}/series/{se}/instances/{sop}/metadata",
            paths.instance_metadata(st, se, sop),
        ),
    }


@pytest.fixture(scope="module")
def client(nginx: NginxServer) -> Iterator[DICOMwebClient]:
    session = requests.Session()
    try:
        yield DICOMwebClient(url=nginx.url, session=session)
    finally:
        session.close()


@pytest.fixture(params=SOURCE_NAMES)
def ds(request: pytest.FixtureRequest, source_datasets: dict[str, pydicom.Dataset]) -> Any:
    return source_datasets[request.param]


# -- the server ----------------------------------------------------------------------


def test_the_archive_holds_what_the_tests_expect(
    nginx: NginxServer, source_datasets: dict[str, pydicom.Dataset]
) -> None:
    multi = source_datasets["SC_rgb_rle_2frame.dcm"]
    assert number_of_frames(multi) == 2
    for ds in source_datasets.values():
        for n in range(1, number_of_frames(ds) + 1):
            assert (nginx.archive / frame_path(ds, n)).is_file()


# -- QIDO-RS and metadata: gzip_static + gunzip -------------------------------------


JSON_KINDS = (
    "studies",
    "series",
    "instances",
    "study-metadata",
    "series-metadata",
    "instance-metadata",
)
#: Accept-Encoding values, and whether each admits gzip.
ENCODINGS = {
    "gzip": True,
    BROWSER_ENCODING: True,
    None: False,  # no Accept-Encoding header at all
    "identity": False,
    "gzip;q=0": False,
    "deflate, br": False,
}


@pytest.mark.parametrize("kind", JSON_KINDS)
@pytest.mark.parametrize("accept_encoding", list(ENCODINGS))
def test_json_resource(
    nginx: NginxServer, ds: pydicom.Dataset, kind: str, accept_encoding: str | None
) -> None:
    url, relative = json_documents(ds)[kind]
    headers = {"Accept": OHIF_JSON_ACCEPT}
    if accept_encoding is not None:
        headers["Accept-Encoding"] = accept_encoding
    response = nginx.request(f"/dicomweb{url}", headers)

    assert response.status == 200
    assert response.header("Content-Type") == JSON_TYPE
    assert "Accept-Encoding" in (response.header("Vary") or "")
    assert response.header("Cache-Control") == "no-cache"  # changes with conversions
    assert_cors(response)
    if ENCODINGS[accept_encoding]:
        # The stored file itself, labelled as gzip.
        assert response.header("Content-Encoding") == "gzip"
        assert response.body == stored(nginx, relative)
        assert response.header("Content-Length") == str(len(response.body))
    else:
        # Inflated by nginx's gunzip filter: plain JSON.
        assert response.header("Content-Encoding") is None
        assert json.loads(response.body) == stored_json(nginx, relative)


def test_pages_of_the_study_list(nginx: NginxServer) -> None:
    """A large archive's study list pages (store/listing.py) are served as the lists are."""
    page = nginx.archive / paths.study_list_page(0)
    page.parent.mkdir()
    page.write_bytes(stored(nginx, paths.STUDIES_INDEX))
    try:
        for encoding, body in (("gzip", page.read_bytes()), ("identity", None)):
            response = nginx.request("/dicomweb/studies/pages/0", {"Accept-Encoding": encoding})
            assert response.status == 200
            assert response.header("Content-Type") == JSON_TYPE
            assert response.header("Cache-Control") == "no-cache"
            if body is None:
                assert json.loads(response.body) == stored_json(nginx, paths.STUDIES_INDEX)
            else:
                assert response.body == body
        for missing in ("/dicomweb/studies/pages/1", "/dicomweb/studies/pages/0.json.gz"):
            assert nginx.request(missing).status == 404
    finally:
        page.unlink()
        page.parent.rmdir()


def test_json_behind_a_proxy(nginx: NginxServer, ds: pydicom.Dataset) -> None:
    """A proxy or CDN (Via header) that accepts gzip gets the stored gzip bytes."""
    url, relative = json_documents(ds)["series-metadata"]
    response = nginx.request(
        f"/dicomweb{url}", {"Accept-Encoding": "gzip", "Via": "1.1 cdn.example"}
    )
    assert response.header("Content-Encoding") == "gzip"
    assert response.body == stored(nginx, relative)


def test_revalidation(nginx: NginxServer, ds: pydicom.Dataset) -> None:
    """Cached documents and frames revalidate with a 304 (ETag)."""
    url, _ = json_documents(ds)["series-metadata"]
    for path in (f"/dicomweb{url}", f"/dicomweb/{frame_path(ds, 1)}"):
        for encoding in ("gzip", "identity"):
            first = nginx.request(path, {"Accept-Encoding": encoding})
            etag = first.header("ETag")
            assert first.status == 200 and etag, (path, encoding)
            again = nginx.request(path, {"Accept-Encoding": encoding, "If-None-Match": etag})
            assert again.status == 304, (path, encoding)
            assert again.body == b""
            assert_cors(again)


def test_json_head_and_ranges(nginx: NginxServer, ds: pydicom.Dataset) -> None:
    url, relative = json_documents(ds)["series-metadata"]
    head = nginx.request(f"/dicomweb{url}", {"Accept-Encoding": "gzip"}, method="HEAD")
    assert head.status == 200
    assert head.body == b""
    assert head.header("Content-Encoding") == "gzip"
    assert head.header("Content-Length") == str(len(stored(nginx, relative)))
    # No byte ranges over JSON: the whole document, whatever the encoding.
    for encoding in ("gzip", "identity"):
        ranged = nginx.request(
            f"/dicomweb{url}", {"Range": "bytes=0-9", "Accept-Encoding": encoding}
        )
        assert ranged.status == 200
        assert ranged.header("Content-Range") is None


def test_qido_ignores_queries_ohif_sends(
    nginx: NginxServer, source_datasets: dict[str, pydicom.Dataset]
) -> None:
    """Every query gets the whole document; OHIF (staticWado) filters it itself."""
    everything = stored_json(nginx, paths.STUDIES_INDEX)
    ct = source_datasets["CT_small.dcm"]
    st, se, _ = uid_path(ct)
    includefield = "includefield=00081030%2C00080060%2C00080090%2C00100030"
    for query in (
        f"limit=101&offset=0&fuzzymatching=false&{includefield}&StudyInstanceUID={st}",
        f"00100020={ct.PatientID}&limit=101&offset=0&fuzzymatching=false&{includefield}",
        "limit=101&offset=0&fuzzymatching=false&PatientName=*Compressed*",
        "StudyInstanceUID=1.2%5C3.4&includefield=00081030&includefield=00080060",
    ):
        response = nginx.request(
            f"/dicomweb/studies?{query}",
            {"Accept": OHIF_JSON_ACCEPT, "Accept-Encoding": BROWSER_ENCODING},
        )
        assert response.status == 200, query
        assert json.loads(gzip.decompress(response.body)) == everything
    for query in (
        "includefield=00080021%2C00080031%2C0008103E%2C00200011",
        f"includefield=0008103E%2C00080021&SeriesInstanceUID={se}",
    ):
        response = nginx.request(f"/dicomweb/studies/{st}/series?{query}")
        assert response.status == 200
        assert json.loads(response.body) == stored_json(nginx, paths.series_index(st))
    response = nginx.request(
        f"/dicomweb/studies/{st}/series/{se}/instances?limit=1&includefield=00080018"
    )
    assert json.loads(response.body) == stored_json(nginx, paths.instances_index(st, se))
    # The old combined metadata Accept is answered with JSON too.
    response = nginx.request(
        f"/dicomweb/studies/{st}/series/{se}/metadata",
        {"Accept": OHIF_OLD_METADATA_ACCEPT},
    )
    assert response.status == 200
    assert response.header("Content-Type") == JSON_TYPE


# -- dicomweb-client ------------------------------------------------------------------


def test_search_for_studies(
    client: DICOMwebClient, source_datasets: dict[str, pydicom.Dataset]
) -> None:
    rows = client.search_for_studies()
    by_uid = {row["0020000D"]["Value"][0]: row for row in rows}
    assert len(rows) == len(by_uid) == len(source_datasets)
    for ds in source_datasets.values():
        row = by_uid[ds.StudyInstanceUID]
        assert row["00100010"]["Value"] == [{"Alphabetic": str(ds.PatientName)}]
        assert row["00100020"]["Value"] == [ds.PatientID]
        assert row["00080020"]["Value"] == [ds.StudyDate]
        assert ds.Modality in row["00080061"]["Value"]
        assert row["00201208"]["Value"] == [1]
        if ds.get("StudyDescription"):
            assert row["00081030"]["Value"] == [ds.StudyDescription]
    # Filters go to the server, which ignores them: OHIF filters client-side.
    ct = source_datasets["CT_small.dcm"]
    assert len(client.search_for_studies(search_filters={"PatientID": ct.PatientID})) == len(rows)


def test_search_for_series_and_instances(client: DICOMwebClient, ds: pydicom.Dataset) -> None:
    st, se, sop = uid_path(ds)
    series = client.search_for_series(st)
    assert [s["0020000E"]["Value"][0] for s in series] == [se]
    assert series[0]["00080060"]["Value"] == [ds.Modality]
    instances = client.search_for_instances(st, se)
    assert [i["00080018"]["Value"][0] for i in instances] == [sop]
    assert instances[0]["00080016"]["Value"] == [ds.SOPClassUID]


def test_retrieve_metadata(client: DICOMwebClient, nginx: NginxServer, ds: pydicom.Dataset) -> None:
    st, se, sop = uid_path(ds)
    series = client.retrieve_series_metadata(st, se)
    assert series == stored_json(nginx, paths.series_metadata(st, se))
    assert client.retrieve_study_metadata(st) == stored_json(nginx, paths.study_metadata(st))
    instance = client.retrieve_instance_metadata(st, se, sop)
    assert [instance] == stored_json(nginx, paths.instance_metadata(st, se, sop))
    (meta,) = series
    assert meta["00080018"]["Value"] == [sop]
    assert meta["00280010"]["Value"] == [ds.Rows]
    assert meta["00280011"]["Value"] == [ds.Columns]
    assert meta["00100010"]["Value"] == [{"Alphabetic": str(ds.PatientName)}]
    assert meta["7FE00010"]["BulkDataURI"] == f"series/{se}/instances/{sop}/frames"


def _frame_media_types(ds: pydicom.Dataset) -> tuple[tuple[str, str], ...]:
    ts = uids.frame_transfer_syntax(ds.file_meta.TransferSyntaxUID)
    return ((uids.frame_media_type(ts), ts),)


def test_retrieve_instance_frames(client: DICOMwebClient, ds: pydicom.Dataset) -> None:
    st, se, sop = uid_path(ds)
    expected = pydicom_frames(ds)
    assert expected and all(expected)
    for number, frame in enumerate(expected, 1):
        # Accept */* (the client's default), then the frame's own media type.
        assert client.retrieve_instance_frames(st, se, sop, [number]) == [frame]
        got = client.retrieve_instance_frames(
            st, se, sop, [number], media_types=_frame_media_types(ds)
        )
        assert got == [frame]
        streamed = client.iter_instance_frames(
            st, se, sop, [number], media_types=_frame_media_types(ds)
        )
        assert list(streamed) == [frame]


def test_retrieve_bulkdata(
    client: DICOMwebClient, nginx: NginxServer, source_datasets: dict[str, pydicom.Dataset]
) -> None:
    ds = source_datasets["CT_small.dcm"]
    st, se, sop = uid_path(ds)
    (meta,) = client.retrieve_series_metadata(st, se)
    bulk = {
        tag: element["BulkDataURI"]
        for tag, element in meta.items()
        if element.get("BulkDataURI", "").startswith("bulkdata/")
    }
    assert bulk, "CT_small.dcm has private binary values stored as bulk data"
    for tag, uri in bulk.items():
        url = f"{nginx.url}/studies/{st}/{uri}"
        assert client.retrieve_bulkdata(url) == [ds[int(tag, 16)].value]
        raw = nginx.request(url.removeprefix(nginx.origin), {"Accept-Encoding": "gzip"})
        assert raw.status == 200
        assert raw.header("Content-Type") == MULTIPART_TYPE
        assert raw.header("Content-Encoding") is None
        headers, payload = multipart.unwrap(raw.body)
        assert headers["content-type"] == "application/octet-stream"
        assert payload == ds[int(tag, 16)].value


def test_frame_lists_and_pixel_data_uri_are_not_served(
    client: DICOMwebClient, nginx: NginxServer, source_datasets: dict[str, pydicom.Dataset]
) -> None:
    """What a static archive cannot answer is a clean 404, never a wrong body.

    ``frames/1,2`` (a frame list, which dicomweb-client builds for several
    frames) and the Pixel Data BulkDataURI ``…/frames`` have no file.
    """
    ds = source_datasets["SC_rgb_rle_2frame.dcm"]
    st, se, sop = uid_path(ds)
    with pytest.raises(requests.HTTPError) as caught:
        client.retrieve_instance_frames(st, se, sop, [1, 2])
    assert caught.value.response is not None
    assert caught.value.response.status_code == 404
    with pytest.raises(requests.HTTPError) as caught:
        client.retrieve_bulkdata(f"{nginx.url}/studies/{st}/series/{se}/instances/{sop}/frames")
    assert caught.value.response is not None
    assert caught.value.response.status_code == 404


# -- frames over raw HTTP: headers, identity encoding, byte ranges ------------------


@pytest.mark.parametrize("accept", OHIF_FRAME_ACCEPTS)
def test_frame_as_ohif_requests_it(nginx: NginxServer, ds: pydicom.Dataset, accept: str) -> None:
    ts = uids.frame_transfer_syntax(ds.file_meta.TransferSyntaxUID)
    for number, frame in enumerate(pydicom_frames(ds), 1):
        relative = frame_path(ds, number)
        response = nginx.request(
            f"/dicomweb/{relative}",
            {"Accept": accept, "Accept-Encoding": BROWSER_ENCODING, "Origin": "http://viewer"},
        )
        assert response.status == 200  # the streamed loader wants exactly 200
        assert response.header("Content-Type") == MULTIPART_TYPE
        assert response.header("Content-Encoding") is None
        assert response.header("Content-Length") == str(len(response.body))
        assert response.header("Accept-Ranges") == "bytes"
        assert_cors(response)
        assert response.body == stored(nginx, relative)
        headers, payload = multipart.unwrap(response.body)
        assert headers["content-type"] == f"{uids.frame_media_type(ts)}; transfer-syntax={ts}"
        assert payload == frame
        # Cornerstone's parser: the part header is spelled exactly "Content-Type:".
        assert b"\r\nContent-Type: " in response.body[: response.body.index(b"\r\n\r\n")]


def test_frame_head(nginx: NginxServer, ds: pydicom.Dataset) -> None:
    relative = frame_path(ds, 1)
    response = nginx.request(f"/dicomweb/{relative}", method="HEAD")
    assert response.status == 200
    assert response.body == b""
    assert response.header("Content-Length") == str(len(stored(nginx, relative)))
    assert response.header("Content-Type") == MULTIPART_TYPE


def test_frame_byte_ranges(nginx: NginxServer, ds: pydicom.Dataset) -> None:
    relative = frame_path(ds, number_of_frames(ds))
    url = f"/dicomweb/{relative}"
    whole = stored(nginx, relative)
    total = len(whole)
    assert total > 200
    # As Cornerstone sends them: Range, no Authorization, identity encoding.
    base = {"Accept": OHIF_FRAME_ACCEPTS[0], "Accept-Encoding": "identity"}

    first = nginx.request(url, {**base, "Range": "bytes=0-99"})
    assert first.status == 206
    assert first.header("Content-Range") == f"bytes 0-99/{total}"
    assert first.header("Content-Length") == "100"
    assert first.header("Content-Type") == MULTIPART_TYPE
    assert first.header("Content-Encoding") is None
    assert_cors(first)
    assert first.body == whole[:100]

    rest = nginx.request(url, {**base, "Range": "bytes=100-"})
    assert rest.status == 206
    assert rest.header("Content-Range") == f"bytes 100-{total - 1}/{total}"
    assert first.body + rest.body == whole  # what the range loader concatenates

    middle = total // 2
    tail = nginx.request(url, {**base, "Range": f"bytes={middle}-"})
    assert tail.status == 206
    assert tail.body == whole[middle:]

    # Cornerstone's first chunk is larger than these frames: clipped, still 206.
    for chunk in ("bytes=0-65535", "bytes=0-131071", "bytes=0-"):
        clipped = nginx.request(url, {**base, "Range": chunk})
        assert clipped.status == 206, chunk
        assert clipped.header("Content-Range") == f"bytes 0-{total - 1}/{total}"
        assert clipped.body == whole

    # gzip accepted or not, ranges count identity bytes.
    gz = nginx.request(url, {**base, "Accept-Encoding": BROWSER_ENCODING, "Range": "bytes=0-99"})
    assert gz.status == 206 and gz.body == whole[:100]
    assert gz.header("Content-Encoding") is None

    beyond = nginx.request(url, {**base, "Range": f"bytes={total}-"})
    assert beyond.status == 416
    assert beyond.header("Content-Range") == f"bytes */{total}"
    assert_cors(beyond)


# -- 404s: missing resources and the archive's private files ------------------------


def test_missing_resources_are_404(
    nginx: NginxServer, source_datasets: dict[str, pydicom.Dataset]
) -> None:
    multi = source_datasets["SC_rgb_rle_2frame.dcm"]
    st, se, sop = uid_path(multi)
    unknown = "1.2.3.4.5.6.7.8.9"
    missing = [
        f"/dicomweb/studies/{st}/series/{se}/instances/{sop}/frames/3",
        f"/dicomweb/studies/{st}/series/{se}/instances/{sop}/frames/0",
        f"/dicomweb/studies/{st}/series/{se}/instances/{sop}/frames/01",
        f"/dicomweb/studies/{st}/series/{se}/instances/{unknown}/frames/1",
        f"/dicomweb/studies/{st}/series/{se}/instances/{unknown}/metadata",
        f"/dicomweb/studies/{unknown}/metadata",
        f"/dicomweb/studies/{unknown}/series",
        f"/dicomweb/studies/{st}/series/{unknown}/instances",
        f"/dicomweb/studies/{st}/series/{unknown}/metadata",
        f"/dicomweb/studies/{st}/bulkdata/00/{'0' * 62}",
        f"/dicomweb/studies/{st}",
        f"/dicomweb/studies/{st}/series/{se}/instances/{sop}",
        f"/dicomweb/studies/{st}/series/{se}/instances/{sop}/rendered",
        f"/dicomweb/studies/{st}/series/{se}/instances/{sop}/thumbnail",
        f"/dicomweb/studies/{st}/instances",
        "/dicomweb/studies/",
        "/dicomweb/",
        "/dicomweb",
        "/",
    ]
    for path in missing:
        for encoding in ("gzip", "identity"):
            response = nginx.request(path, {"Accept-Encoding": encoding, "Range": "bytes=0-9"})
            assert response.status == 404, path
            assert_cors(response)


def test_private_files_are_not_served(
    nginx: NginxServer, source_datasets: dict[str, pydicom.Dataset]
) -> None:
    ds = source_datasets["CT_small.dcm"]
    st, se, sop = uid_path(ds)
    lock = next((nginx.archive / paths.WORK_DIR / "locks").iterdir())
    lock_path = lock.relative_to(nginx.archive).as_posix()
    private = {
        # URL: the file behind it, which does exist.
        f"/dicomweb/{paths.MANIFEST}": paths.MANIFEST,
        f"/{paths.MANIFEST}": paths.MANIFEST,
        f"/dicomweb/{lock_path}": lock_path,
        f"/{lock_path}": lock_path,
        f"/dicomweb/{paths.WORK_DIR}/": paths.WORK_DIR,
        f"/dicomweb/{paths.deduplicated(st)}": paths.deduplicated(st),
        f"/dicomweb/{paths.deduplicated(st).removesuffix('.gz')}": paths.deduplicated(st),
        f"/dicomweb/{paths.instance_info(st, se, sop)}": paths.instance_info(st, se, sop),
        f"/dicomweb/{paths.instance_info(st, se, sop).removesuffix('.gz')}": (
            paths.instance_info(st, se, sop)
        ),
        # Stored names are not URLs either.
        f"/dicomweb/{paths.STUDIES_INDEX}": paths.STUDIES_INDEX,
        f"/{paths.STUDIES_INDEX}": paths.STUDIES_INDEX,
        f"/dicomweb/{paths.study_metadata(st)}": paths.study_metadata(st),
        f"/dicomweb/{paths.study_row(st)}": paths.study_row(st),
        # Dot segments are resolved before matching.
        f"/dicomweb/studies/../{paths.MANIFEST}": paths.MANIFEST,
        f"/dicomweb/studies/%2E%2E/{paths.MANIFEST}": paths.MANIFEST,
        f"/dicomweb/{frame_path(ds, 1)}/../../{paths.INFO}": paths.instance_info(st, se, sop),
        f"/dicomweb/studies/{st}/series/{se}/instances/{sop}/%2E%2E/{sop}/{paths.INFO}": (
            paths.instance_info(st, se, sop)
        ),
    }
    for url, relative in private.items():
        assert (nginx.archive / relative).exists(), relative
        response = nginx.request(url, {"Accept-Encoding": "gzip"})
        assert response.status == 404, url
        assert_cors(response)


# -- CORS -----------------------------------------------------------------------------


def test_cors_preflight(nginx: NginxServer, ds: pydicom.Dataset) -> None:
    st, se, _ = uid_path(ds)
    for path in (
        f"/dicomweb/{frame_path(ds, 1)}",
        f"/dicomweb/studies/{st}/series/{se}/metadata",
        "/dicomweb/studies?limit=101&offset=0",
        f"/dicomweb/{frame_path(ds, 99)}",  # even where a GET would be 404
    ):
        response = nginx.request(
            path,
            {
                "Origin": "http://viewer.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "accept, authorization, range",
            },
            method="OPTIONS",
        )
        assert response.status == 204, path
        assert response.body == b""
        assert_cors(response)
        assert "GET" in (response.header("Access-Control-Allow-Methods") or "")
        assert int(response.header("Access-Control-Max-Age") or 0) >= 600


def test_writes_are_refused(nginx: NginxServer) -> None:
    """No STOW-RS: a POST is an error, with CORS headers so the browser can see it."""
    for path in ("/dicomweb/studies", "/dicomweb/studies/1.2.3"):
        response = nginx.request(path, {"Content-Type": "application/dicom"}, method="POST")
        assert response.status in (404, 405), path
        assert_cors(response)


def test_served_files_are_readable_by_other_users(nginx: NginxServer) -> None:
    unreadable = [
        path.relative_to(nginx.archive).as_posix()
        for path in (nginx.archive / "studies").rglob("*")
        if path.is_file() and not path.stat().st_mode & stat.S_IROTH
    ]
    assert not unreadable, f"{len(unreadable)} files only their owner can read"


def test_archive_untouched_by_serving(nginx: NginxServer) -> None:
    """The server only reads: nothing new appears in the archive."""
    names = {p.name for p in Path(nginx.archive).iterdir()}
    assert names == {paths.MANIFEST, paths.WORK_DIR, "studies"}
