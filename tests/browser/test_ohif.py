"""The real OHIF viewer, in headless Chromium, against an archive.

Two deployments, each with the viewer on another origin than the archive:

* ``dwa-serve``: a live ``dwa serve`` answers QIDO-RS and WADO-RS itself; OHIF's
  default (quoted) multipart Accept makes every frame URL a CORS preflight.
* ``nginx-static``: the archive hosted by nginx with ``deploy/nginx.conf`` and
  OHIF configured as deploy/README.md says (``staticWado: true``).

For each, the study list must show the study, the viewer must draw its
pixels, and no request of the page may fail or be answered with an error.
Screenshots and a log of every request go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Request, Response, expect

from tests.browser.conftest import Study, Viewer, serve_viewer

pytestmark = pytest.mark.browser

#: Upper bounds for the slow steps (OHIF's start-up alone takes seconds on 2 cores).
PAGE_TIMEOUT_MS = 45_000
RENDER_TIMEOUT = 60.0
QUIET_TIMEOUT = 45.0
QUIET_PERIOD = 1.5

#: OHIF data source settings per deployment (qidoRoot/wadoRoot are added).
DATA_SOURCES: dict[str, dict[str, object]] = {
    "dwa-serve": {
        "imageRendering": "wadors",
        "thumbnailRendering": "wadors",
        "enableStudyLazyLoad": True,
        "supportsWildcard": True,
        "supportsFuzzyMatching": False,
        "bulkDataURI": {"enabled": True},
    },
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
SERVERS = {"dwa-serve": "dwa_serve", "nginx-static": "static_archive"}


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


@dataclass
class Exchange:
    request: Request
    response: Response | None = None
    failure: str | None = None
    done: bool = False


@dataclass
class Traffic:
    """Every request the browser makes, with its outcome."""

    exchanges: dict[int, Exchange] = field(default_factory=dict)
    last_change: float = field(default_factory=time.monotonic)

    @classmethod
    def watch(cls, context: BrowserContext) -> Traffic:
        traffic = cls()
        context.on("request", traffic._on_request)
        context.on("response", traffic._on_response)
        context.on("requestfinished", traffic._on_finished)
        context.on("requestfailed", traffic._on_failed)
        return traffic

    def _entry(self, request: Request) -> Exchange:
        self.last_change = time.monotonic()
        return self.exchanges.setdefault(id(request), Exchange(request))

    def _on_request(self, request: Request) -> None:
        self._entry(request)

    def _on_response(self, response: Response) -> None:
        self._entry(response.request).response = response

    def _on_finished(self, request: Request) -> None:
        self._entry(request).done = True

    def _on_failed(self, request: Request) -> None:
        entry = self._entry(request)
        entry.failure = request.failure or "failed"
        entry.done = True

    def pending(self) -> list[Exchange]:
        return [e for e in self.exchanges.values() if not e.done]

    def wait_until_quiet(self, page: Page) -> None:
        """Until nothing is in flight and nothing new started for QUIET_PERIOD seconds."""
        deadline = time.monotonic() + QUIET_TIMEOUT
        while time.monotonic() < deadline:
            quiet_for = time.monotonic() - self.last_change
            if not self.pending() and quiet_for >= QUIET_PERIOD:
                return
            page.wait_for_timeout(200)
        still = "\n".join(f"  {e.request.method} {e.request.url}" for e in self.pending())
        pytest.fail(f"requests still in flight after {QUIET_TIMEOUT} s:\n{still}")

    def problems(self) -> list[str]:
        """Each request that failed or was answered with status >= 400, in detail."""
        out = []
        for e in self.exchanges.values():
            status = e.response.status if e.response else None
            if e.failure is None and (status is None or status < 400):
                continue
            request = e.request
            lines = [f"{request.method} {request.url}"]
            lines += [f"    > {k}: {v}" for k, v in request.headers.items()]
            if e.failure is not None:
                lines.append(f"    failed: {e.failure}")
            if e.response is not None:
                lines.append(f"    < {e.response.status} {e.response.status_text}")
                lines += [f"    < {k}: {v}" for k, v in e.response.headers.items()]
                try:
                    body = e.response.text()[:500]
                except Exception as exc:  # the body may be gone (e.g. a failed stream)
                    body = f"(body unavailable: {exc})"
                lines.append(f"    < {body}")
            out.append("\n".join(lines))
        return out

    def to_json(self) -> list[dict[str, Any]]:
        rows = []
        for e in self.exchanges.values():
            row: dict[str, Any] = {
                "method": e.request.method,
                "url": e.request.url,
                "type": e.request.resource_type,
                "request_headers": e.request.headers,
            }
            if e.response is not None:
                row["status"] = e.response.status
                row["response_headers"] = e.response.headers
            if e.failure is not None:
                row["failure"] = e.failure
            rows.append(row)
        return rows

    def answered(self, prefix: str, contains: str = "") -> list[Exchange]:
        """Requests to URLs starting with ``prefix`` that were answered."""
        return [
            e
            for e in self.exchanges.values()
            if e.request.url.startswith(prefix)
            and contains in e.request.url
            and e.response is not None
        ]


def _record(page: Page, traffic: Traffic, artifacts: Path, name: str) -> None:
    page.screenshot(path=artifacts / f"{name}.png")
    (artifacts / f"{name}-requests.json").write_text(json.dumps(traffic.to_json(), indent=1))


def _assert_no_failed_requests(traffic: Traffic) -> None:
    problems = traffic.problems()
    assert not problems, f"{len(problems)} request(s) failed:\n\n" + "\n\n".join(problems)


#: Statistics of what each Cornerstone viewport canvas shows: the 2D canvas the
#: rendering engine copies its (WebGL or CPU) output into; overlays are DOM, not in it.
CANVAS_STATS = """
() => [...document.querySelectorAll('canvas.cornerstone-canvas')].map((canvas) => {
  const ctx = canvas.getContext('2d');
  if (!ctx || !canvas.width || !canvas.height) {
    return {width: canvas.width, height: canvas.height, levels: 0, lit: 0};
  }
  const {data} = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const levels = new Set();
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) {
    const grey = (data[i] + data[i + 1] + data[i + 2]) / 3 | 0;
    levels.add(grey);
    if (grey > 16) lit += 1;
  }
  return {
    width: canvas.width, height: canvas.height,
    levels: levels.size, lit: lit / (canvas.width * canvas.height),
  };
})
"""


def _rendered(stats: list[dict[str, Any]]) -> bool:
    # A CT slice of the phantom: the body fills a good part of the viewport and
    # shows many grey levels; a blank, black or single-colour canvas does not.
    return any(s["levels"] >= 32 and s["lit"] >= 0.05 for s in stats)


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
        _record(page, traffic, artifacts, f"{deployment.name}-worklist")
    searches = traffic.answered(f"{viewer.dicomweb}/studies?")
    assert searches, "the study list sent no QIDO-RS study search"
    _assert_no_failed_requests(traffic)


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
        deadline = time.monotonic() + RENDER_TIMEOUT
        while time.monotonic() < deadline:
            stats = page.evaluate(CANVAS_STATS)
            if _rendered(stats):
                break
            page.wait_for_timeout(250)
        traffic.wait_until_quiet(page)
    finally:
        _record(page, traffic, artifacts, f"{deployment.name}-viewer")
        (artifacts / f"{deployment.name}-viewer-canvas.json").write_text(json.dumps(stats))
    assert _rendered(stats), f"no viewport shows the image within {RENDER_TIMEOUT} s: {stats}"
    frames = traffic.answered(f"{viewer.dicomweb}/studies/{study.study_uid}/", "/frames/")
    assert frames, "the viewer requested no frame"
    metadata = traffic.answered(f"{viewer.dicomweb}/studies/{study.study_uid}/", "/metadata")
    assert metadata, "the viewer requested no metadata"
    _assert_no_failed_requests(traffic)
