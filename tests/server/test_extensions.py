"""Extension folders over HTTP: served with their content type, written by PUT
behind the write token, listed, and never reached outside their folder."""

from __future__ import annotations

import gzip
import http.client
import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model.paths import ResourcePath
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.extensions import attach
from dicomweb_archive.store.packing import pack_study, unpack_study
from dicomweb_archive.types import InstanceKey
from tests.conftest import write_instance
from tests.server.live import live_server

TOKEN = "t0ken"
FOLDER = "_aistartupco_covid19_detection"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def key() -> InstanceKey:
    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    return InstanceKey(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("extensions") / "archive"
    names = [str(get_testdata_file(n)) for n in ("CT_small.dcm", "MR_small.dcm")]
    assert Converter(root, ConvertOptions(workers=1)).convert(names).ok
    return root


@pytest.fixture(scope="module")
def url(archive: Path) -> Iterator[str]:
    with live_server(create_app(archive, write_token=TOKEN, max_upload_bytes=1 << 16)) as root:
        yield root


def _instance_url(url: str, key: InstanceKey) -> str:
    return f"{url}/{ResourcePath.instance(key)}"


def test_put_then_get_at_every_level(url: str, key: InstanceKey, archive: Path) -> None:
    study, series, _ = key
    for level in (
        f"{url}/studies/{study}",
        f"{url}/studies/{study}/series/{series}",
        _instance_url(url, key),
    ):
        target = f"{level}/{FOLDER}/heatmap.png"
        created = httpx.put(target, content=PNG, headers=AUTH)
        assert created.status_code == 201, created.text
        assert created.headers["location"] == target
        assert created.json() == {
            "url": target,
            "size": len(PNG),
            "contentType": "image/png",
            "changed": True,
        }
        again = httpx.put(target, content=PNG, headers=AUTH)
        assert again.status_code == 200 and again.json()["changed"] is False
        got = httpx.get(target)
        assert got.status_code == 200
        assert got.content == PNG
        assert got.headers["content-type"] == "image/png"
        assert got.headers["x-content-type-options"] == "nosniff"
        ranged = httpx.get(target, headers={"Range": "bytes=8-15"})
        assert ranged.status_code == 206 and ranged.content == PNG[8:16]
        head = httpx.head(target)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(PNG))
        relative = urlsplit(target).path.removeprefix("/dicomweb/")
        assert (archive / relative).read_bytes() == PNG


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("result.json", "application/json"),
        ("report.pdf", "application/pdf"),
        ("seg.nii", "application/octet-stream"),
        ("seg.nii.gz", "application/gzip"),
        ("page.html", "application/octet-stream"),
    ],
)
def test_content_type_from_the_name(url: str, key: InstanceKey, name: str, media_type: str) -> None:
    target = f"{_instance_url(url, key)}/_v_types/{name}"
    assert httpx.put(target, content=b"x", headers=AUTH).status_code in (200, 201)
    assert httpx.get(target).headers["content-type"] == media_type


def test_the_study_lists_its_extension_folders(url: str, key: InstanceKey) -> None:
    target = f"{_instance_url(url, key)}/{FOLDER}/result.json"
    assert httpx.put(target, content=b'{"p": 1}', headers=AUTH).status_code in (200, 201)
    listed = httpx.get(f"{url}/studies/{key.study_instance_uid}/extensions")
    assert listed.status_code == 200
    assert listed.headers["content-type"] == "application/json"
    document = listed.json()
    [entry] = [
        e for e in document["extensions"] if e["level"] == "instance" and e["name"] == FOLDER
    ]
    assert {"name": "result.json", "size": 8, "contentType": "application/json"} in entry["files"]
    # The entry's path, against the study's URL, is the folder's URL.
    file_url = f"{url}/studies/{key.study_instance_uid}/{entry['path']}/result.json"
    assert httpx.get(file_url).content == b'{"p": 1}'
    # Gzipped as stored for a client that takes it.
    raw = httpx.get(
        f"{url}/studies/{key.study_instance_uid}/extensions",
        headers={"Accept-Encoding": "gzip"},
    )
    assert raw.headers["content-encoding"] == "gzip"


def test_writes_need_the_token(url: str, key: InstanceKey, archive: Path) -> None:
    target = f"{_instance_url(url, key)}/_v_secret/result.json"
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = httpx.put(target, content=b"{}", headers=headers)
        assert refused.status_code == 401
    assert not list(archive.rglob("_v_secret"))


def test_writes_are_checked(url: str, key: InstanceKey) -> None:
    study, series, _ = key
    unknown = "1.2.3.4.5.6.7.8.9"
    missing = [
        f"{url}/studies/{unknown}/{FOLDER}/x.json",
        f"{url}/studies/{study}/series/{unknown}/{FOLDER}/x.json",
        f"{url}/studies/{study}/series/{series}/instances/{unknown}/{FOLDER}/x.json",
    ]
    for target in missing:
        assert httpx.put(target, content=b"{}", headers=AUTH).status_code == 404, target
    too_large = httpx.put(
        f"{_instance_url(url, key)}/{FOLDER}/big.bin", content=b"0" * (1 << 17), headers=AUTH
    )
    assert too_large.status_code == 413
    assert httpx.get(f"{_instance_url(url, key)}/{FOLDER}/big.bin").status_code == 404


def _raw(url: str, method: str, path: str) -> int:
    """One request with ``path`` sent exactly as given (no client normalisation)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.putheader("Authorization", f"Bearer {TOKEN}")
        connection.putheader("Content-Length", "2")
        connection.endheaders(b"{}")
        return connection.getresponse().status
    finally:
        connection.close()


TRAVERSALS = [
    "{i}/{f}/..%2F..%2F..%2Fmetadata.gz",
    "{i}/{f}/%2E%2E",
    "{i}/{f}/%2e%2e%2finfo.json.gz",
    "{i}/{f}/..",
    "{i}/{f}/.hidden",
    "{i}/{f}/a%00b",
    "{i}/{f}/a%5Cb",
    "{i}/%2E%2E/info.json.gz",
    "{i}/_a_b%2F..%2F..%2Fx/result.json",
    "{i}/_A_b/result.json",
    "{i}/_a_b/sub/result.json",
    "{i}/info.json.gz",
    "{i}/_a_b/%252e%252e",
    "/dicomweb/studies/..%2F..%2Fmanifest.json/_a_b/x",
]


@pytest.mark.parametrize("template", TRAVERSALS)
def test_no_request_leaves_an_extension_folder(
    url: str, key: InstanceKey, archive: Path, template: str
) -> None:
    instance = urlsplit(_instance_url(url, key)).path
    path = template.format(i=instance, f=FOLDER)
    before = sorted(str(p) for p in archive.rglob("*") if ".dwa" not in p.parts)
    for method in ("GET", "PUT"):
        status = _raw(url, method, path)
        assert status in (400, 404, 405), (method, path, status)
    assert sorted(str(p) for p in archive.rglob("*") if ".dwa" not in p.parts) == before


def test_served_from_a_packed_study(tmp_path: Path, key: InstanceKey) -> None:
    root = tmp_path / "archive"
    assert (
        Converter(root, ConvertOptions(workers=1))
        .convert([str(get_testdata_file("CT_small.dcm"))])
        .ok
    )
    archive = open_archive(root)
    attach(archive, ResourcePath.instance(key), FOLDER, [("result.json", io.BytesIO(b"[1]"))])
    pack_study(archive, key.study_instance_uid, remove=True)
    with live_server(create_app(root)) as url:
        got = httpx.get(f"{_instance_url(url, key)}/{FOLDER}/result.json")
        assert (got.status_code, got.content) == (200, b"[1]")
        assert got.headers["content-type"] == "application/json"
        listed = httpx.get(f"{url}/studies/{key.study_instance_uid}/extensions")
        assert orjson.loads(listed.content)["extensions"][0]["name"] == FOLDER
        # A PUT into the packed study unpacks it, as a conversion would.
        put = httpx.put(f"{url}/studies/{key.study_instance_uid}/_v_note/n.txt", content=b"hi")
        assert put.status_code == 201
        assert (
            root / "studies" / key.study_instance_uid / "_v_note" / "n.txt"
        ).read_bytes() == b"hi"
    assert gzip.decompress(
        (root / "studies" / key.study_instance_uid / "extensions.json.gz").read_bytes()
    )


def test_kept_when_stow_rs_replaces_the_instance(tmp_path: Path) -> None:
    """A STOW-RS of the instance with other content leaves its extension folders."""
    root = tmp_path / "archive"
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    original = write_instance(tmp_path / "in", study=study, series=series, sop=sop)
    changed = write_instance(
        tmp_path / "changed", study=study, series=series, sop=sop, rows=8, columns=8
    )
    target = f"studies/{study}/series/{series}/instances/{sop}/{FOLDER}/result.json"
    # Replacing an instance with other content is the overwrite policy's.
    app = create_app(root, write_token=TOKEN, on_duplicate="overwrite")
    with live_server(app) as url:
        for source in (original, changed):
            stored = httpx.post(
                f"{url}/studies",
                content=source.read_bytes(),
                headers={**AUTH, "Content-Type": "application/dicom"},
            )
            assert stored.status_code == 200, stored.text
            if source == original:
                put = httpx.put(f"{url}/{target}", content=b"[42]", headers=AUTH)
                assert put.status_code == 201
        rows = httpx.get(f"{url}/studies/{study}/series/{series}/instances").json()
        assert rows[0]["00280010"]["Value"] == [8]  # the replacement is there
        assert httpx.get(f"{url}/{target}").content == b"[42]"
        listed = httpx.get(f"{url}/studies/{study}/extensions").json()
        assert listed["extensions"][0]["name"] == FOLDER


def test_carried_by_a_study_zip_into_another_archive(tmp_path: Path, key: InstanceKey) -> None:
    root = tmp_path / "archive"
    assert (
        Converter(root, ConvertOptions(workers=1))
        .convert([str(get_testdata_file("CT_small.dcm"))])
        .ok
    )
    source = open_archive(root)
    attach(source, ResourcePath.instance(key), FOLDER, [("result.json", io.BytesIO(b"[7]"))])
    other = open_archive(tmp_path / "other")
    zip_path = pack_study(source, key.study_instance_uid, other)
    elsewhere = open_archive(tmp_path / "elsewhere")
    unpack_study(tmp_path / "other" / zip_path, elsewhere)
    extension = ResourcePath.instance(key).extension_path(FOLDER, "result.json")
    assert (tmp_path / "elsewhere" / extension.file).read_bytes() == b"[7]"
    with live_server(create_app(tmp_path / "other")) as url:
        assert httpx.get(f"{url}/{extension}").content == b"[7]"
