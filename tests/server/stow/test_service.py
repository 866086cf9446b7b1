"""STOW-RS: storing instances, failure reasons, media types, the write token, limits."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.packing import pack_study
from tests.conftest import snapshot, write_instance
from tests.server.live import live_server

MULTIPART = 'multipart/related; type="application/dicom"; boundary=stow-test'
CANNOT_UNDERSTAND = 0xC000
DATASET_MISMATCH = 0xA900
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
SOP_CLASS_NOT_SUPPORTED = 0x0122


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([]).ok
    return root


@pytest.fixture
def client(archive: Path) -> Iterator[TestClient]:
    with TestClient(create_app(archive)) as test_client:
        yield test_client


def _multipart(
    *parts: bytes, boundary: str = "stow-test", part_type: str = "application/dicom"
) -> bytes:
    out = b""
    for part in parts:
        out += f"\r\n--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode() + part
    return out + f"\r\n--{boundary}--\r\n".encode()


def _testdata(name: str) -> bytes:
    return Path(get_testdata_file(name)).read_bytes()


def _study(tmp_path: Path, count: int, **kwargs: Any) -> tuple[str, list[bytes]]:
    study, series = generate_uid(), generate_uid()
    files = [
        write_instance(tmp_path / "input", study=study, series=series, instance_number=n, **kwargs)
        for n in range(1, count + 1)
    ]
    return study, [f.read_bytes() for f in files]


def _uids(dataset: dict[str, Any], sequence: str) -> list[str | None]:
    items = dataset.get(sequence, {}).get("Value", [])
    return [item["00081155"].get("Value", [None])[0] for item in items]


def _reasons(dataset: dict[str, Any]) -> list[int]:
    return [item["00081197"]["Value"][0] for item in dataset["00081198"]["Value"]]


def test_store_several_instances_then_search_and_retrieve(
    client: TestClient, tmp_path: Path
) -> None:
    study, files = _study(tmp_path, 2)
    mr = _testdata("MR_small.dcm")
    response = client.post(
        "/dicomweb/studies", content=_multipart(*files, mr), headers={"Content-Type": MULTIPART}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+json"
    answer = response.json()
    assert "00081198" not in answer  # no FailedSOPSequence when all is stored
    assert "00081190" not in answer  # two studies: no single study to point to
    stored = [pydicom.dcmread(io.BytesIO(f)) for f in [*files, mr]]
    assert _uids(answer, "00081199") == [ds.SOPInstanceUID for ds in stored]
    for item, ds in zip(answer["00081199"]["Value"], stored, strict=True):
        assert item["00081150"]["Value"] == [ds.SOPClassUID]
        assert item["00081190"]["Value"] == [
            f"http://testserver/dicomweb/studies/{ds.StudyInstanceUID}/series/"
            f"{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
        ]
    # The index answers at once.
    rows = client.get("/dicomweb/studies").json()
    assert {r["0020000D"]["Value"][0] for r in rows} == {study, stored[2].StudyInstanceUID}
    instances = client.get(f"/dicomweb/studies/{study}/instances").json()
    assert sorted(r["00080018"]["Value"][0] for r in instances) == sorted(
        ds.SOPInstanceUID for ds in stored[:2]
    )
    [row] = client.get("/dicomweb/studies", params={"StudyInstanceUID": study}).json()
    assert row["00201208"]["Value"] == [2]
    ds = stored[0]
    url = f"/dicomweb/studies/{study}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    [meta] = client.get(f"{url}/metadata").json()
    assert meta["00100010"]["Value"] == [{"Alphabetic": str(ds.PatientName)}]
    frame = client.get(f"{url}/frames/1", params={"accept": "application/octet-stream"})
    assert frame.content == ds.PixelData


def test_storing_into_a_packed_study(client: TestClient, tmp_path: Path, archive: Path) -> None:
    """A packed study being served takes new instances: it is unpacked, then stored into."""
    study, files = _study(tmp_path, 3)
    headers = {"Content-Type": MULTIPART}
    stored = client.post("/dicomweb/studies", content=_multipart(*files[:2]), headers=headers)
    assert stored.status_code == 200
    zipped = archive / pack_study(open_archive(archive), study, remove=True)
    assert zipped.is_file() and not (archive / "studies" / study).exists()
    first = pydicom.dcmread(io.BytesIO(files[0]))
    url = f"/dicomweb/studies/{study}/series/{first.SeriesInstanceUID}"
    # Served from the ZIP (and its handle kept open by the server) before the store.
    assert len(client.get(f"{url}/metadata").json()) == 2

    body = _multipart(files[2])
    response = client.post(f"/dicomweb/studies/{study}", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert not zipped.exists() and (archive / "studies" / study).is_dir()
    assert len(client.get(f"{url}/metadata").json()) == 3
    [row] = client.get("/dicomweb/studies", params={"StudyInstanceUID": study}).json()
    assert row["00201208"]["Value"] == [3]
    for data in files:
        ds = pydicom.dcmread(io.BytesIO(data))
        frame = client.get(
            f"{url}/instances/{ds.SOPInstanceUID}/frames/1",
            params={"accept": "application/octet-stream"},
        )
        assert frame.content == ds.PixelData


def test_a_bad_part_fails_alone(client: TestClient, tmp_path: Path, archive: Path) -> None:
    study, [good] = _study(tmp_path, 1)
    truncated = _testdata("CT_small.dcm")[:-2000]
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    body = _multipart(good, b"this is not DICOM", truncated, b"")
    response = client.post("/dicomweb/studies", content=body, headers={"Content-Type": MULTIPART})
    assert response.status_code == 202
    answer = response.json()
    assert _uids(answer, "00081199") == [pydicom.dcmread(io.BytesIO(good)).SOPInstanceUID]
    assert answer["00081190"]["Value"] == [f"http://testserver/dicomweb/studies/{study}"]
    assert _reasons(answer) == [CANNOT_UNDERSTAND] * 3
    failed = answer["00081198"]["Value"]
    # The truncated instance is still named; garbage and the empty part cannot be.
    assert failed[1]["00081155"]["Value"] == [ct.SOPInstanceUID]
    assert failed[1]["00081150"]["Value"] == [ct.SOPClassUID]
    assert "Value" not in failed[0]["00081155"]
    warning = response.headers["warning"]
    assert "part 2: not a DICOM file" in warning and "part 4: the part is empty" in warning
    assert [r["0020000D"]["Value"][0] for r in client.get("/dicomweb/studies").json()] == [study]
    assert not list((archive / ".dwa" / "tmp").iterdir())  # spooled parts are removed

    # A part of another media type inside an application/dicom body fails too.
    body = _multipart(b'{"00080018": {}}', part_type="application/dicom+json")
    response = client.post("/dicomweb/studies", content=body, headers={"Content-Type": MULTIPART})
    assert response.status_code == 409
    assert _reasons(response.json()) == [CANNOT_UNDERSTAND]


def test_instances_of_another_study_than_the_path(client: TestClient, tmp_path: Path) -> None:
    study, [mine] = _study(tmp_path, 1)
    other = _testdata("MR_small.dcm")
    url = f"/dicomweb/studies/{study}"
    response = client.post(
        url, content=_multipart(mine, other), headers={"Content-Type": MULTIPART}
    )
    assert response.status_code == 202
    answer = response.json()
    assert answer["00081190"]["Value"] == [f"http://testserver{url}"]
    assert _reasons(answer) == [DATASET_MISMATCH]
    mr = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    assert _uids(answer, "00081198") == [mr.SOPInstanceUID]
    response = client.post(url, content=_multipart(other), headers={"Content-Type": MULTIPART})
    assert response.status_code == 409
    assert _reasons(response.json()) == [DATASET_MISMATCH]
    assert (
        client.get("/dicomweb/studies", params={"StudyInstanceUID": mr.StudyInstanceUID}).json()
        == []
    )
    bad = client.post(
        "/dicomweb/studies/1..2", content=_multipart(mine), headers={"Content-Type": MULTIPART}
    )
    assert bad.status_code == 400


def test_unsupported_transfer_syntax_and_sop_class(client: TestClient, tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.3.4.5.6"  # native data under an unknown syntax
    buffer = io.BytesIO()
    ds.save_as(buffer)
    dicomdir = _testdata("DICOMDIR")
    body = _multipart(buffer.getvalue(), dicomdir)
    response = client.post("/dicomweb/studies", content=body, headers={"Content-Type": MULTIPART})
    assert response.status_code == 409
    assert _reasons(response.json()) == [TRANSFER_SYNTAX_NOT_SUPPORTED, SOP_CLASS_NOT_SUPPORTED]
    dicomdir_meta = pydicom.dcmread(get_testdata_file("DICOMDIR")).file_meta
    assert _uids(response.json(), "00081198") == [
        ds.SOPInstanceUID,
        dicomdir_meta.MediaStorageSOPInstanceUID,
    ]


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/related; type="application/dicom"; boundary="stow-test"',
        "multipart/related; type=application/dicom; boundary=stow-test",
        'Multipart/Related ; Type = "Application/DICOM" ; boundary = stow-test',
        "multipart/related; boundary=stow-test",  # no type: the parts are application/dicom
    ],
)
def test_content_type_spellings(client: TestClient, content_type: str) -> None:
    body = _multipart(_testdata("CT_small.dcm"))
    assert (
        client.post(
            "/dicomweb/studies", content=body, headers={"Content-Type": content_type}
        ).status_code
        == 200
    )


def test_single_part_and_line_feed_bodies(client: TestClient) -> None:
    single = client.post(
        "/dicomweb/studies",
        content=_testdata("CT_small.dcm"),
        headers={"Content-Type": "application/dicom"},
    )
    assert single.status_code == 200
    mr = _testdata("MR_small.dcm")
    body = b"--b\nContent-Type: application/dicom\n\n" + mr + b"\n--b--\n"
    headers = {"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'}
    assert client.post("/dicomweb/studies", content=body, headers=headers).status_code == 200
    assert len(client.get("/dicomweb/studies").json()) == 2


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (None, 415),
        ("application/json", 415),
        ("multipart/form-data; boundary=stow-test", 415),
        ('multipart/related; type="application/dicom+json"; boundary=stow-test', 415),
        ('multipart/related; type="application/dicom"', 400),
        ('multipart/related; type="application/dicom"; boundary=""', 400),
    ],
)
def test_refused_media_types(client: TestClient, content_type: str | None, status: int) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    body = _multipart(_testdata("CT_small.dcm"))
    response = client.post("/dicomweb/studies", content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["status"] == status
    assert client.get("/dicomweb/studies").json() == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\r\n--stow-test\r\nContent-Type: application/dicom\r\n\r\nDICM", MULTIPART),
        (b"--stow-test--\r\n", MULTIPART),
        (b"--stow-test\r\nbroken header\r\n\r\nx\r\n--stow-test--", MULTIPART),
        (b"", "application/dicom"),
    ],
)
def test_malformed_bodies(client: TestClient, body: bytes, content_type: str) -> None:
    response = client.post(
        "/dicomweb/studies", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400


def test_write_token(archive: Path) -> None:
    body = _multipart(_testdata("CT_small.dcm"))
    with TestClient(create_app(archive, write_token="s3cret")) as client:
        missing = client.post(
            "/dicomweb/studies", content=body, headers={"Content-Type": MULTIPART}
        )
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        for authorization in ("Bearer wrong", "Basic czNjcmV0", "Bearer s3cret2", "Bearer"):
            wrong = client.post(
                "/dicomweb/studies",
                content=body,
                headers={"Content-Type": MULTIPART, "Authorization": authorization},
            )
            assert wrong.status_code == 401, authorization
        assert client.get("/dicomweb/studies").json() == []  # reads stay open
        right = client.post(
            "/dicomweb/studies",
            content=body,
            headers={"Content-Type": MULTIPART, "Authorization": "bearer s3cret"},
        )
        assert right.status_code == 200
        assert len(client.get("/dicomweb/studies").json()) == 1
        preflight = client.options(
            "/dicomweb/studies",
            headers={
                "Origin": "http://viewer",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert "POST" in preflight.headers["access-control-allow-methods"]
        denied = client.post(
            "/dicomweb/studies",
            content=body,
            headers={"Content-Type": MULTIPART, "Origin": "http://viewer"},
        )
        assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == "*"


def test_authorization_comes_before_the_path(archive: Path) -> None:
    """A client without the token learns nothing, not even that a UID is malformed."""
    body = _multipart(_testdata("CT_small.dcm"))
    with TestClient(create_app(archive, write_token="s3cret")) as client:
        for url in ("/dicomweb/studies/1.2.x", "/dicomweb/studies/" + "1" * 65):
            anonymous = client.post(url, content=body, headers={"Content-Type": "text/plain"})
            assert anonymous.status_code == 401, url
            assert anonymous.json()["error"] == "UnauthorizedError"
            authorized = client.post(
                url,
                content=body,
                headers={"Content-Type": MULTIPART, "Authorization": "Bearer s3cret"},
            )
            assert authorized.status_code == 400, url
            assert authorized.json()["error"] == "InvalidUIDError"


def test_upload_size_limit(archive: Path) -> None:
    ct = _testdata("CT_small.dcm")
    body = _multipart(ct, ct)
    with TestClient(create_app(archive, max_upload_bytes=len(body) - 1)) as client:
        declared = client.post(
            "/dicomweb/studies", content=body, headers={"Content-Type": MULTIPART}
        )
        assert declared.status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
            for start in range(0, len(body), 4096):
                yield body[start : start + 4096]

        streamed = client.post(
            "/dicomweb/studies", content=chunks(), headers={"Content-Type": MULTIPART}
        )
        assert streamed.status_code == 413
        assert client.get("/dicomweb/studies").json() == []
        assert not list((archive / ".dwa" / "tmp").iterdir())
        small = client.post(
            "/dicomweb/studies", content=_multipart(ct), headers={"Content-Type": MULTIPART}
        )
        assert small.status_code == 200


def test_storing_the_same_instance_twice(client: TestClient, archive: Path) -> None:
    body = _multipart(_testdata("CT_small.dcm"))
    first = client.post("/dicomweb/studies", content=body, headers={"Content-Type": MULTIPART})
    assert first.status_code == 200
    before = snapshot(archive)
    again = client.post("/dicomweb/studies", content=body, headers={"Content-Type": MULTIPART})
    assert again.status_code == 200
    assert again.json() == first.json()
    assert snapshot(archive) == before  # not a byte, not a modification time changed
    assert len(client.get("/dicomweb/instances").json()) == 1


def test_dicomweb_client_against_a_live_server(archive: Path, tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    # Large enough for dicomweb-client to send it chunked (it chunks above 1 MB).
    sources = [
        write_instance(
            tmp_path / "big",
            study=study,
            series=series,
            instance_number=n,
            frames=8,
            rows=256,
            columns=256,
        )
        for n in (1, 2)
    ]
    sources.append(Path(get_testdata_file("CT_small.dcm")))
    datasets = [pydicom.dcmread(p) for p in sources]
    with live_server(create_app(archive, write_token="t0ken")) as url:
        web = DICOMwebClient(url, headers={"Authorization": "Bearer t0ken"})
        answer = web.store_instances(datasets)
        assert [i.ReferencedSOPInstanceUID for i in answer.ReferencedSOPSequence] == [
            ds.SOPInstanceUID for ds in datasets
        ]
        assert "FailedSOPSequence" not in answer
        only = web.store_instances(datasets[:2], study_instance_uid=study)
        assert only.RetrieveURL == f"{url}/studies/{study}"
        found = web.search_for_instances(study)
        assert sorted(r["00080018"]["Value"][0] for r in found) == sorted(
            ds.SOPInstanceUID for ds in datasets[:2]
        )
        for source in datasets:
            got = web.retrieve_instance(
                source.StudyInstanceUID, source.SeriesInstanceUID, source.SOPInstanceUID
            )
            for element in source:
                if element.tag.group != 0x0002 and element.tag != 0xFFFCFFFC:
                    assert got[element.tag].value == element.value, element
        [frame] = web.retrieve_instance_frames(
            study, series, datasets[1].SOPInstanceUID, frame_numbers=[3]
        )
        size = 256 * 256 * 2
        assert frame == datasets[1].PixelData[2 * size : 3 * size]

        with pytest.raises(requests.HTTPError) as refused:
            DICOMwebClient(url).store_instances(datasets[:1])
        assert refused.value.response.status_code == 401

        # Two writers at once into one study: both stored, the study lists both.
        extra = [
            pydicom.dcmread(
                write_instance(tmp_path / "extra", study=study, series=series, instance_number=n)
            )
            for n in (10, 11)
        ]
        results: list[Any] = []
        writers = [
            threading.Thread(target=lambda ds=ds: results.append(web.store_instances([ds])))
            for ds in extra
        ]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        assert len(results) == 2
        assert len(web.search_for_instances(study)) == 4


def test_a_client_that_goes_away_stores_nothing(archive: Path) -> None:
    app = create_app(archive)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/dicomweb/studies",
        "raw_path": b"/dicomweb/studies",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", MULTIPART.encode())],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
    }
    messages = [
        {
            "type": "http.request",
            "body": _multipart(_testdata("CT_small.dcm"))[:5000],
            "more_body": True,
        },
        {"type": "http.disconnect"},
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    # In a thread of its own: other tests may leave an event loop running in this one.
    worker = threading.Thread(target=anyio.run, args=(app, scope, receive, send))
    worker.start()
    worker.join()
    assert sent[0]["status"] == 400
    assert not list((archive / ".dwa" / "tmp").iterdir())
    assert not (archive / "studies").exists() or not any(
        p.is_dir() for p in (archive / "studies").iterdir()
    )


def test_an_archive_that_cannot_be_written(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(store: object, options: object) -> None:
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr("dicomweb_archive.server.stow.service.ensure", read_only)
    body = _multipart(_testdata("CT_small.dcm"))
    response = client.post("/dicomweb/studies", content=body, headers={"Content-Type": MULTIPART})
    assert response.status_code == 503
    assert "Read-only" in response.json()["detail"]


def test_a_new_folder_becomes_an_archive_that_takes_stow(tmp_path: Path) -> None:
    study, files = _study(tmp_path, 2)
    root = tmp_path / "new" / "archive"
    with TestClient(create_app(root)) as client:
        body, headers = _multipart(*files), {"Content-Type": MULTIPART}
        assert client.post("/dicomweb/studies", content=body, headers=headers).status_code == 200
        # Written behind, read current: the first read settles the study.
        found = client.get("/dicomweb/studies").json()
        assert [row["0020000D"]["Value"] for row in found] == [[study]]
        assert len(client.get(f"/dicomweb/studies/{study}/metadata").json()) == 2
    # The flusher stopped with the server, caught up: a static host sees the study.
    assert (root / "studies" / "index.json.gz").exists()


def test_a_folder_with_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an archive")
    with pytest.raises(Exception, match="not a dicomweb-archive folder"):
        create_app(tmp_path)


def test_a_duplicate_with_other_content_is_refused_then_overwritten(
    client: TestClient, tmp_path: Path, archive: Path
) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    first = write_instance(tmp_path / "a", study=study, series=series, sop=sop).read_bytes()
    other = write_instance(tmp_path / "b", study=study, series=series, sop=sop, frames=2)
    headers = {"Content-Type": MULTIPART}
    assert client.post("/dicomweb/studies", content=_multipart(first), headers=headers).is_success
    before = snapshot(archive)
    refused = client.post(
        "/dicomweb/studies", content=_multipart(other.read_bytes()), headers=headers
    )
    assert refused.status_code == 409
    assert _reasons(refused.json()) == [0x0111]  # Duplicate SOP Instance
    assert _uids(refused.json(), "00081198") == [sop]
    assert "stored already with other content" in refused.headers["warning"]
    assert snapshot(archive) == before
    with TestClient(create_app(archive, on_duplicate="overwrite")) as overwriting:
        replaced = overwriting.post(
            "/dicomweb/studies", content=_multipart(other.read_bytes()), headers=headers
        )
        assert replaced.status_code == 200
        frames = overwriting.get(f"/dicomweb/studies/{study}/series/{series}/instances")
        assert frames.json()[0]["00280008"]["Value"] == [2]
