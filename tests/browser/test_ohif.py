"""The real OHIF viewer, in headless Chromium, against an archive.

Two deployments, each with the viewer on another origin than the archive:

* ``dwa-serve``: a live ``dwa serve`` answers QIDO-RS and WADO-RS itself; OHIF's
  default (quoted) multipart Accept makes every frame URL a CORS preflight.
* ``nginx-static``: the archive hosted by nginx with ``deploy/nginx.conf`` and
  OHIF configured as deploy/README.md says (``staticWado: true``).
* ``s3-static``: the archive pushed into a bucket of a real S3 API (moto) and
  read straight from it through nginx with ``deploy/nginx-s3.conf``, which only
  maps URLs to object keys: every header is the one stored with the object.

For each, the study list must show the study, the viewer must draw its
pixels, and no request of the page may fail or be answered with an error.
Screenshots and a log of every request go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import DWA_SERVE_SOURCE, Study, Viewer, serve_viewer
from tests.browser.pages import (
    PAGE_TIMEOUT_MS,
    RENDER_TIMEOUT,
    Traffic,
    assert_no_failed_requests,
    record,
    rendered,
    wait_rendered,
)

pytestmark = pytest.mark.browser

#: OHIF data source settings per deployment (qidoRoot/wadoRoot are added).
DATA_SOURCES: dict[str, dict[str, object]] = {
    "dwa-serve": DWA_SERVE_SOURCE,
    # deploy/README.md, step 5.
    "nginx-static": {
        "staticWado": True,
        "enableStudyLazyLoad": True,
        "imageRendering": "wadors",
        "thumbnailRendering": "wadors",
        "omitQuotationForMultipartRequest": True,
        "bulkDataURI": {"enabled": True},
    },
}
DATA_SOURCES["s3-static"] = DATA_SOURCES["nginx-static"]
SERVERS = {
    "dwa-serve": "dwa_serve",
    "nginx-static": "static_archive",
    "s3-static": "s3_static_archive",
}


@dataclass
class Deployment:
    name: str
    viewer: Viewer


@pytest.fixture(scope="module", params=list(DATA_SOURCES))
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, ohif_dist: Path
) -> Iterator[Deployment]:
    name: str = request.param
    dicomweb: str = request.getfixturevalue(SERVERS[name])
    prefix = tmp_path_factory.mktemp(f"viewer-{name}")
    with serve_viewer(prefix, ohif_dist, dicomweb, DATA_SOURCES[name]) as viewer:
        yield Deployment(name, viewer)


def test_study_list_shows_the_study(
    deployment: Deployment, browser: BrowserContext, study: Study, artifacts: Path
) -> None:
    viewer = deployment.viewer
    traffic = Traffic.watch(browser)
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.goto(f"{viewer.origin}/", timeout=PAGE_TIMEOUT_MS)
    try:
        # One row: "Family, Given", study date, modality, description, instances.
        family, given = study.patient_name.split("^")
        row = page.get_by_role("row").filter(has_text=study.description)
        expect(row).to_have_count(1, timeout=PAGE_TIMEOUT_MS)
        expect(row).to_be_visible()
        for text in (f"{family}, {given}", study.study_date, "CT", str(study.slices)):
            expect(row.get_by_role("cell", name=text, exact=True)).to_be_visible()
        traffic.wait_until_quiet(page)
    finally:
        record(page, traffic, artifacts, f"{deployment.name}-worklist")
    searches = traffic.answered(f"{viewer.dicomweb}/studies?")
    assert searches, "the study list sent no QIDO-RS study search"
    assert_no_failed_requests(traffic)


def test_viewer_renders_the_study(
    deployment: Deployment, browser: BrowserContext, study: Study, artifacts: Path
) -> None:
    viewer = deployment.viewer
    traffic = Traffic.watch(browser)
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.goto(
        f"{viewer.origin}/viewer?StudyInstanceUIDs={study.study_uid}", timeout=PAGE_TIMEOUT_MS
    )
    stats: list[dict[str, Any]] = []
    try:
        page.locator("canvas.cornerstone-canvas").first.wait_for(
            state="visible", timeout=PAGE_TIMEOUT_MS
        )
        stats = wait_rendered(page)
        traffic.wait_until_quiet(page)
    finally:
        record(page, traffic, artifacts, f"{deployment.name}-viewer")
        (artifacts / f"{deployment.name}-viewer-canvas.json").write_text(json.dumps(stats))
    assert rendered(stats), f"no viewport shows the image within {RENDER_TIMEOUT} s: {stats}"
    frames = traffic.answered(f"{viewer.dicomweb}/studies/{study.study_uid}/", "/frames/")
    assert frames, "the viewer requested no frame"
    metadata = traffic.answered(f"{viewer.dicomweb}/studies/{study.study_uid}/", "/metadata")
    assert metadata, "the viewer requested no metadata"
    assert_no_failed_requests(traffic)
