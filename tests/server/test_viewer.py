"""The OHIF viewer at ``/viewer``: its files, its routes, its generated configuration."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient

from dicomweb_archive.model import paths
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.viewer.config import PROGRESSIVE_URL
from tests.server.conftest import converted

INDEX = b"<!doctype html><title>OHIF</title>"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return converted(tmp_path_factory, "folders", ["CT_small.dcm"])


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for OHIF's build, laid out as ``dwa viewer install`` leaves it."""
    cache = tmp_path_factory.mktemp("ohif")
    dist = cache / "package" / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_bytes(INDEX)
    (dist / "app.bundle.0f61.js").write_text("console.log('ohif');")
    (dist / "0ddf.wasm").write_bytes(b"\0asm\1\0\0\0")
    (dist / "app.bundle.css").write_text("body {}")
    (dist / "assets" / "logo.svg").write_text("<svg/>")
    (cache / "secret.txt").write_text("not served")
    return cache


@pytest.fixture(scope="module")
def client(archive: Path, dist: Path) -> Iterator[TestClient]:
    with TestClient(create_app(archive, viewer=str(dist))) as test_client:
        yield test_client


def config(response_text: str) -> dict[str, object]:
    prefix, suffix = "window.config = ", ";\n"
    assert response_text.startswith(prefix) and response_text.endswith(suffix)
    document: dict[str, object] = orjson.loads(response_text[len(prefix) : -len(suffix)])
    return document


@pytest.mark.parametrize(
    "path",
    [
        "/viewer",
        "/viewer?StudyInstanceUIDs=1.2.3",
        "/viewer/dicomweb?StudyInstanceUIDs=1.2.3",
        # Other routes of the single-page application.
        "/notfoundstudy",
        "/segmentation?StudyInstanceUIDs=1.2.3",
    ],
)
def test_routes_of_the_application_are_its_index(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.content == INDEX
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cross-origin-opener-policy"] == "same-origin"
    assert response.headers["cross-origin-embedder-policy"] == "require-corp"
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/app.bundle.0f61.js", "text/javascript"),
        ("/0ddf.wasm", "application/wasm"),
        ("/app.bundle.css", "text/css"),
        ("/assets/logo.svg", "image/svg+xml"),
        (PROGRESSIVE_URL, "text/javascript"),
    ],
)
def test_files_have_their_media_types(client: TestClient, path: str, media_type: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    # The viewer's workers are refused under COEP without these.
    assert response.headers["cross-origin-embedder-policy"] == "require-corp"
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"


@pytest.mark.parametrize("path", ["/missing.js", "/..%2Fsecret.txt", "/assets/../../secret.txt"])
def test_no_file_outside_the_build(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert b"not served" not in response.content


def test_the_study_browser_and_the_service_keep_their_paths(client: TestClient) -> None:
    assert '<meta name="viewer" content="installed">' in client.get("/").text
    assert client.get("/dicomweb/studies").status_code == 200
    assert client.get("/dicomweb/nothing").json()["error"] == "ResourceNotFoundError"


def test_the_configuration_points_at_this_server(client: TestClient) -> None:
    response = client.get("/app-config.js")
    assert response.headers["content-type"].startswith("text/javascript")
    document = config(response.text)
    [source] = document["dataSources"]  # type: ignore[misc]
    settings = source["configuration"]
    assert settings["qidoRoot"] == settings["wadoRoot"] == "/dicomweb"
    assert document["routerBasename"] == "/"
    # No HTJ2K alternates: no progressive loading.
    assert document["extensions"] == []
    assert "progressiveLoading" not in settings
    # OHIF's guided tour is off (the browser test checks none shows).
    assert document["customizationService"] == {"ohif.tours": {"$set": []}}


def test_htj2k_alternates_switch_progressive_loading_on(
    archive: Path, dist: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "archive"
    shutil.copytree(archive, copy)
    with open_archive(copy) as opened:
        [study] = opened.study_uids()
    [series] = [p for p in (copy / "studies" / study / "series").iterdir() if p.is_dir()]
    [instance] = [p for p in (series / "instances").iterdir() if p.is_dir()]
    alternate = copy / paths.htj2k_frame_path(study, series.name, instance.name, 1)
    alternate.parent.mkdir(parents=True)
    alternate.write_bytes(b"stand-in")
    with TestClient(create_app(copy, viewer=str(dist))) as client:
        document = config(client.get("/app-config.js").text)
    assert document["extensions"] == [PROGRESSIVE_URL]
    [source] = document["dataSources"]  # type: ignore[misc]
    assert source["configuration"]["progressiveLoading"] is True


@pytest.mark.parametrize("viewer", [None, "/nonexistent/ohif"])
def test_without_a_build_the_viewer_says_how_to_get_it(archive: Path, viewer: str | None) -> None:
    with TestClient(create_app(archive, viewer=viewer)) as client:
        for path in ("/viewer", "/viewer?StudyInstanceUIDs=1.2.3"):
            response = client.get(path)
            assert response.status_code == 404
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert "dwa viewer install" in response.text
            assert "--viewer auto" in response.text
        assert client.get("/app-config.js").status_code == 404
        assert '<meta name="viewer" content="missing">' in client.get("/").text
