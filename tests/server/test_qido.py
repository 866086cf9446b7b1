"""QIDO-RS over HTTP: hostile queries, refused values, paging."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.uid import generate_uid
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.server import qido
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store import index
from tests.conftest import write_instance
from tests.server.conftest import SOURCES, dataset
from tests.server.live import live_server

INSTANCES = 300


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qido")
    study, series = generate_uid(), generate_uid()
    for number in range(1, INSTANCES + 1):
        write_instance(
            root / "in", study=study, series=series, instance_number=number, rows=4, columns=4
        )
    result = Converter(root / "archive", ConvertOptions(workers=1)).convert([str(root / "in")])
    assert result.ok
    return root / "archive"


@pytest.fixture(scope="module")
def client(archive: Path) -> Iterator[TestClient]:
    with TestClient(create_app(archive)) as test_client:
        yield test_client


def test_a_backtracking_pattern_is_answered_at_once(archive: Path) -> None:
    # With a regular expression, each "*?" group multiplied the time by ~12 on a
    # RetrieveURL: this one took hours over a few hundred rows.
    hostile = "*?" * 8 + "*~"
    answers: dict[str, float] = {}
    with live_server(create_app(archive)) as url, httpx.Client(timeout=10) as http:

        def search() -> None:
            started = time.perf_counter()
            response = http.get(f"{url}/instances", params={"RetrieveURL": hostile})
            assert response.status_code == 200
            assert response.json() == []
            answers["hostile"] = time.perf_counter() - started

        searching = threading.Thread(target=search)
        searching.start()
        started = time.perf_counter()
        assert http.get(f"{url}/studies").status_code == 200
        answers["simple"] = time.perf_counter() - started
        searching.join()
    assert answers["hostile"] < 2
    assert answers["simple"] < 2


def test_a_search_past_its_budget_is_refused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index, "SEARCH_BUDGET", -1.0)
    response = client.get("/dicomweb/instances", params={"PatientName": "*e*"})
    assert response.status_code == 503
    assert "took longer" in response.json()["detail"]


def test_an_overlong_pattern_is_refused(client: TestClient) -> None:
    response = client.get("/dicomweb/instances", params={"PatientName": "*a" * 200})
    assert response.status_code == 400
    assert "limited" in response.json()["detail"]


def test_a_search_after_a_store_finds_the_instance(archive: Path, tmp_path: Path) -> None:
    # Long searches run meanwhile: on a connection shared between threads, a
    # new search could read inside their older snapshot and miss what was
    # committed since.
    files = [
        write_instance(tmp_path, study=generate_uid(), series=generate_uid(), rows=4, columns=4)
        for _ in range(24)
    ]
    misses: list[str] = []
    stop = threading.Event()
    with live_server(create_app(archive)) as url:

        def scan() -> None:
            with httpx.Client(timeout=30) as http:
                while not stop.is_set():
                    assert http.get(f"{url}/instances").status_code == 200

        def store(mine: list[Path]) -> None:
            with httpx.Client(timeout=30) as http:
                for path in mine:
                    sop = path.stem
                    stored = http.post(
                        f"{url}/studies",
                        content=path.read_bytes(),
                        headers={"Content-Type": "application/dicom"},
                    )
                    assert stored.status_code == 200
                    found = http.get(f"{url}/instances", params={"SOPInstanceUID": sop})
                    if len(found.json()) != 1:
                        misses.append(sop)

        scanners = [threading.Thread(target=scan) for _ in range(2)]
        writers = [threading.Thread(target=store, args=(files[n::4],)) for n in range(4)]
        for thread in [*scanners, *writers]:
            thread.start()
        for thread in writers:
            thread.join()
        stop.set()
        for thread in scanners:
            thread.join()
    assert misses == []


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"StudyDate": "20241301"}, "not a valid DA"),
        ({"StudyDate": "20240231-"}, "not a valid DA"),
        ({"StudyDate": "-"}, "no bound"),
        ({"StudyTime": "2599"}, "not a valid TM"),
        ({"StudyInstanceUID": "abc"}, "not a UID"),
        ({"InstanceNumber": "1_0"}, "not a number"),
        ({"PixelData": "x"}, "cannot be matched"),
        ({"": "x"}, "empty"),
        ({"PatientName.": "x"}, "empty"),
        ({"fuzzymatching": "yes"}, "true or false"),
        ({"limit": "+1"}, "digits"),
        ({"limit": "１"}, "digits"),
        ({"offset": "1_0"}, "digits"),
    ],
)
def test_values_that_cannot_match_are_refused(
    client: TestClient, query: dict[str, str], reason: str
) -> None:
    response = client.get("/dicomweb/instances", params=query)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert reason in response.json()["detail"]


def _sops(rows: list[dict[str, Any]]) -> list[str]:
    return [row["00080018"]["Value"][0] for row in rows]


def test_a_cut_answer_says_so_and_names_the_next_offset(client: TestClient) -> None:
    every = _sops(client.get("/dicomweb/instances", params={"limit": 10_000}).json())
    assert len(every) >= INSTANCES
    first = client.get("/dicomweb/instances", params={"limit": 100})
    assert _sops(first.json()) == every[:100]
    assert first.headers["warning"].startswith("299 ")
    assert "offset=100" in first.headers["warning"]
    last = client.get("/dicomweb/instances", params={"limit": 100, "offset": len(every) - 100})
    assert _sops(last.json()) == every[-100:]
    assert "warning" not in last.headers


def test_a_default_page_size_without_limit(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qido, "DEFAULT_LIMIT", 64)
    pages: list[str] = []
    offset = 0
    while True:
        page = client.get("/dicomweb/instances", params={"offset": offset} if offset else {})
        pages += _sops(page.json())
        if "warning" not in page.headers:
            break
        assert len(page.json()) == 64
        offset = int(page.headers["warning"].rpartition("offset=")[2].rstrip('."'))
    assert pages == _sops(client.get("/dicomweb/instances", params={"limit": 10_000}).json())


def test_qido_sequence_paths(reference_archive: Path) -> None:
    with TestClient(create_app(reference_archive)) as client:
        j2k = dataset("JPEG2000.dcm")
        referenced = j2k.SourceImageSequence[0].ReferencedSOPInstanceUID
        for key in ("00082112.00081155", "SourceImageSequence.ReferencedSOPInstanceUID"):
            rows = client.get("/dicomweb/instances", params={key: referenced}).json()
            assert [r["00080018"]["Value"][0] for r in rows] == [j2k.SOPInstanceUID]
            assert rows[0]["00082112"]["Value"][0]["00081155"]["Value"] == [referenced]
        assert client.get("/dicomweb/instances", params={"00082112.00081155": "1.2.3"}).json() == []
        wildcard = client.get(
            "/dicomweb/instances", params={"SourceImageSequence.ReferencedSOPClassUID": ""}
        )
        assert len(wildcard.json()) == len(SOURCES)
        not_a_sequence = client.get("/dicomweb/instances", params={"PatientName.PatientID": "x"})
        assert not_a_sequence.status_code == 400
        included = client.get(
            "/dicomweb/instances",
            params={"SOPInstanceUID": j2k.SOPInstanceUID, "includefield": "00082112.00081155"},
        ).json()
        assert "00082112" in included[0]


def _small_archive(root: Path) -> tuple[Path, list[str]]:
    studies = [generate_uid() for _ in range(3)]
    for study in studies:
        write_instance(root / "in", study=study, series=generate_uid(), rows=4, columns=4)
    assert Converter(root / "archive", ConvertOptions(workers=1)).convert([str(root / "in")]).ok
    return root / "archive", studies


def _study_uids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(row["0020000D"]["Value"][0] for row in response.json())


def test_an_index_found_damaged_while_serving_is_rebuilt_before_it_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive, studies = _small_archive(tmp_path)
    local = archive / index.INDEX_PATH
    with TestClient(create_app(archive)) as client:
        assert _study_uids(client.get("/dicomweb/studies")) == sorted(studies)
        # A file of garbage in its place, alone (a restore gone wrong; with its
        # write-ahead log, SQLite would read the pages the log holds there).
        garbage = local.with_name("garbage")
        garbage.write_bytes(b"left so by a power failure" * 1000)
        garbage.replace(local)
        for suffix in ("-wal", "-shm"):
            local.with_name(local.name + suffix).unlink()
        assert _study_uids(client.get("/dicomweb/studies")) == sorted(studies)
        assert f"{local}: damaged (file is not a database)" in caplog.text
        new = generate_uid()
        write_instance(tmp_path / "new", study=new, series=generate_uid(), rows=4, columns=4)
        body = [next((tmp_path / "new").iterdir()).read_bytes()]
        stored = client.post(
            "/dicomweb/studies",
            content=_multipart(body),
            headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
        )
        assert stored.status_code == 200, stored.text
        assert _study_uids(client.get("/dicomweb/studies")) == sorted([*studies, new])


def test_damage_met_again_is_a_503_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, studies = _small_archive(tmp_path)

    def damaged(*_: object) -> None:
        exc = sqlite3.DatabaseError("database disk image is malformed")
        exc.sqlite_errorcode = sqlite3.SQLITE_CORRUPT  # type: ignore[attr-defined]
        raise exc

    with TestClient(create_app(archive)) as client:
        monkeypatch.setattr(index, "study_page", damaged)
        refused = client.get("/dicomweb/studies")
        assert refused.status_code == 503
        assert refused.json()["error"] == "DamagedDatabaseError"
        assert refused.json()["detail"].startswith(f"{archive / index.INDEX_PATH}: damaged")
        monkeypatch.undo()
        assert _study_uids(client.get("/dicomweb/studies")) == sorted(studies)


def _multipart(parts: list[bytes]) -> bytes:
    body = b"".join(
        b"--b\r\nContent-Type: application/dicom\r\n\r\n" + part + b"\r\n" for part in parts
    )
    return body + b"--b--\r\n"
