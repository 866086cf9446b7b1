"""The study browser at ``/``: its page, its assets, and the way there from the service's root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from dicomweb_archive.server.app import create_app
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.base import files_under
from tests.server.conftest import converted


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return converted(tmp_path_factory, "folders", ["CT_small.dcm"])


@pytest.fixture(scope="module")
def client(archive: Path) -> Iterator[TestClient]:
    # A write token guards STOW-RS only: the page, like every read, needs none.
    with TestClient(create_app(archive, write_token="secret")) as test_client:
        yield test_client


def test_the_page_names_the_service_root_relative_to_itself(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<meta name="dicomweb-root" content="dicomweb">' in response.text
    # No viewer was configured: the page says how to get one.
    assert '<meta name="viewer" content="missing">' in response.text
    assert 'src="browser/browser.js"' in response.text
    assert response.headers["cross-origin-resource-policy"] == "cross-origin"


@pytest.mark.parametrize(
    ("name", "media_type"),
    [("browser.js", "text/javascript"), ("browser.css", "text/css")],
)
def test_assets_have_their_media_types(client: TestClient, name: str, media_type: str) -> None:
    response = client.get(f"/browser/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{media_type}; charset=utf-8"
    assert len(response.content) > 1000


def test_an_unknown_asset_is_a_json_404(client: TestClient) -> None:
    response = client.get("/browser/index.html")
    assert response.status_code == 404
    assert response.json()["error"] == "ResourceNotFoundError"


@pytest.mark.parametrize(("path", "location"), [("/dicomweb", "./"), ("/dicomweb/", "../")])
def test_the_service_root_leads_to_the_page(client: TestClient, path: str, location: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    # Relative, never built from the Host header.
    assert response.headers["location"] == location
    assert client.get(path).url.path == "/"


def test_a_deeper_base_path(archive: Path) -> None:
    with TestClient(create_app(archive, base_path="/pacs/dicomweb")) as client:
        page = client.get("/")
        assert '<meta name="dicomweb-root" content="pacs/dicomweb">' in page.text
        for path, location in (("/pacs/dicomweb", "../"), ("/pacs/dicomweb/", "../../")):
            response = client.get(path, follow_redirects=False)
            assert response.headers["location"] == location
        assert client.get("/pacs/dicomweb/studies").status_code == 200


def test_the_service_still_answers_under_its_root(client: TestClient) -> None:
    assert client.get("/dicomweb/studies").status_code == 200
    assert client.get("/dicomweb/nothing").json()["error"] == "ResourceNotFoundError"
    assert client.get("/nothing.js").status_code == 404


@pytest.mark.parametrize("layout", ["folders", "zips"])
def test_stored_sizes_of_a_study_and_its_series(
    tmp_path_factory: pytest.TempPathFactory, layout: str
) -> None:
    root = converted(tmp_path_factory, layout, ["CT_small.dcm", "MR_small.dcm"])
    with TestClient(create_app(root)) as client:
        studies = client.get("/dicomweb/studies").json()
        assert len(studies) == 2
        for row in studies:
            study = row["0020000D"]["Value"][0]
            sizes = client.get(f"/browser/sizes/{study}").json()
            series = client.get(f"/dicomweb/studies/{study}/series").json()
            assert set(sizes["series"]) == {r["0020000E"]["Value"][0] for r in series}
            archive = open_archive(root)
            files = list(files_under(archive, f"studies/{study}"))
            assert sizes["study"] == sum(archive.stat(f).size for f in files)
            [(uid, size)] = sizes["series"].items()
            in_series = [f for f in files if f.startswith(f"studies/{study}/series/{uid}/")]
            assert size == sum(archive.stat(f).size for f in in_series)
            # The series hold the frames: most of the study.
            assert sizes["study"] > size > sizes["study"] / 2
        assert client.get("/browser/sizes/1.2.3").status_code == 404
        assert client.get("/browser/sizes/1..2").json()["status"] == 400
