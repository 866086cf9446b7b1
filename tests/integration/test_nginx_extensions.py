"""deploy/nginx.conf serves extension folders and their list as dwa serve does."""

from __future__ import annotations

import gzip
import io
import json
import os

import pydicom
import pytest

from dicomweb_archive.model import extensions, paths
from dicomweb_archive.model.paths import ResourcePath
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.extensions import attach

from .conftest import NginxServer

pytestmark = pytest.mark.integration

FOLDER = "_aistartupco_covid19_detection"
NAMES = ("result.json", "heat.png", "report.pdf", "seg.nii", "seg.nii.gz", "page.html",
         "notes.txt", "x.JPG", "noending")  # fmt: skip


@pytest.fixture(scope="module")
def instance(nginx: NginxServer, source_datasets: dict[str, pydicom.Dataset]) -> ResourcePath:
    ds = source_datasets["CT_small.dcm"]
    level = ResourcePath.instance((ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID))
    files = [(name, io.BytesIO(f"content of {name}".encode())) for name in NAMES]
    attach(open_archive(nginx.archive), level, FOLDER, files)
    attach(
        open_archive(nginx.archive),
        level.up(paths.ResourceType.STUDY),
        "_v_study",
        [("summary.json", io.BytesIO(b"{}"))],
    )
    return level


@pytest.mark.parametrize("name", NAMES)
def test_extension_files_with_their_content_type(
    nginx: NginxServer, instance: ResourcePath, name: str
) -> None:
    path = f"/dicomweb/{instance.extension_path(FOLDER, name)}"
    response = nginx.request(path, {"Accept-Encoding": "gzip"})
    assert response.status == 200, path
    assert response.body == f"content of {name}".encode()
    assert response.header("Content-Type") == extensions.content_type(name)
    assert response.header("Content-Encoding") is None
    assert response.header("X-Content-Type-Options") == "nosniff"
    assert response.header("Access-Control-Allow-Origin") == "*"
    ranged = nginx.request(path, {"Range": "bytes=0-6"})
    assert (ranged.status, ranged.body) == (206, b"content")


def test_study_level_and_the_list(nginx: NginxServer, instance: ResourcePath) -> None:
    study = instance.up(paths.ResourceType.STUDY)
    got = nginx.request(f"/dicomweb/{study}/_v_study/summary.json")
    assert (got.status, got.body) == (200, b"{}")
    listed = nginx.request(f"/dicomweb/{study}/extensions", {"Accept-Encoding": "gzip"})
    assert listed.status == 200
    assert listed.header("Content-Type") == "application/json"
    assert listed.header("Content-Encoding") == "gzip"
    assert (
        listed.body
        == (nginx.archive / paths.study_extensions(str(study.study_instance_uid))).read_bytes()
    )
    plain = nginx.request(f"/dicomweb/{study}/extensions", {"Accept-Encoding": "identity"})
    document = json.loads(plain.body)
    assert {e["name"] for e in document["extensions"]} == {FOLDER, "_v_study"}
    assert json.loads(gzip.decompress(listed.body)) == document


def test_links_and_traversals_are_not_served(
    nginx: NginxServer, instance: ResourcePath, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.json").write_text("secret")
    folder = nginx.archive / str(instance)
    os.symlink(outside, folder / "_v_linked")
    os.symlink(outside / "secret.json", folder / FOLDER / "linked.json")
    os.symlink(nginx.archive / str(instance) / paths.INFO, folder / FOLDER / "info.json")
    try:
        base = f"/dicomweb/{instance}"
        for path in (
            f"{base}/_v_linked/secret.json",
            f"{base}/{FOLDER}/linked.json",
            f"{base}/{FOLDER}/info.json",
            f"{base}/{FOLDER}/..%2F{paths.INFO}",
            f"{base}/{FOLDER}/%2E%2E/{paths.INFO}",
            f"{base}/{FOLDER}/../{paths.INFO}",
            f"{base}/{FOLDER}/.hidden",
            f"{base}/{FOLDER}/a..b",
            f"{base}/{FOLDER}/sub/result.json",
            f"{base}/_A_b/result.json",
            f"{base}/_{FOLDER}/result.json",
            f"{base}/{FOLDER}",
            f"{base}/{FOLDER}/",
            f"/dicomweb/studies/..%2F{FOLDER}/result.json",
            f"/{instance}/{FOLDER}/result.json",
        ):
            response = nginx.request(path)
            assert response.status in (403, 404), (path, response.status)
            assert b"secret" not in response.body
    finally:
        for link in (
            folder / "_v_linked",
            folder / FOLDER / "linked.json",
            folder / FOLDER / "info.json",
        ):
            link.unlink()


def test_no_writes(nginx: NginxServer, instance: ResourcePath) -> None:
    path = f"/dicomweb/{instance.extension_path(FOLDER, 'result.json')}"
    for method in ("PUT", "POST", "DELETE"):
        assert nginx.request(path, method=method).status in (403, 404, 405)
    assert (nginx.archive / str(instance) / FOLDER / "result.json").read_bytes() == (
        b"content of result.json"
    )


def test_bulkdata_context(nginx: NginxServer, source_datasets: dict[str, pydicom.Dataset]) -> None:
    st = source_datasets["CT_small.dcm"].StudyInstanceUID
    plain = nginx.request(f"/dicomweb/studies/{st}/bulkdata", {"Accept-Encoding": "identity"})
    assert plain.status == 200
    assert plain.header("Content-Type") == "application/json"
    document = json.loads(plain.body)
    assert document["studyInstanceUID"] == st and document["bulkdata"]
    for uri, uses in document["bulkdata"].items():
        assert nginx.request(f"/dicomweb/studies/{st}/{uri}").status == 200
        assert all(use["tagPath"] and use["sopInstanceUID"] for use in uses)
