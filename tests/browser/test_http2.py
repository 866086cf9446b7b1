"""OHIF over HTTP/2: ``deploy/nginx-https.conf`` in front of ``dwa serve --viewer``.

The shipped front, rendered as a deployment would be (a self-signed
certificate made here for 127.0.0.1), terminates TLS and speaks HTTP/2 to
Chromium; ``dwa serve`` answers behind it on loopback.  OHIF opens the study
from that one origin: its image must render, no request may fail, and every
request of the page must have gone over HTTP/2 (the Resource Timing API's
``nextHopProtocol``).  Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Playwright

from tests.browser.conftest import (
    CHROMIUM_ARGS,
    REPO,
    Study,
    _nginx,
    _nginx_paths,
    _quoted,
    run_dwa_serve,
    self_signed,
)
from tests.browser.pages import (
    PAGE_TIMEOUT_MS,
    RENDER_TIMEOUT,
    Traffic,
    assert_no_failed_requests,
    record,
    rendered,
    wait_rendered,
)
from tests.integration.conftest import render_conf

pytestmark = pytest.mark.browser

FRONT_CONF = REPO / "deploy" / "nginx-https.conf"
#: Every resource the page loads, not only the first 250 (Chromium's default buffer).
TIMING_BUFFER = "performance.setResourceTimingBufferSize(10000);"
PROTOCOLS = """
() => [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')]
  .map((e) => [e.name, e.nextHopProtocol])
"""


@pytest.fixture(scope="module")
def https_origin(
    tmp_path_factory: pytest.TempPathFactory, study: Study, ohif_dist: Path
) -> Iterator[str]:
    """``dwa serve --viewer`` behind the shipped HTTPS/HTTP/2 front; yields its origin."""
    folder = tmp_path_factory.mktemp("http2")
    cert, key = self_signed(folder)
    with run_dwa_serve(study.archive, folder, ["--viewer", str(ohif_dist)]) as root:
        upstream = root.removeprefix("http://").removesuffix("/dicomweb")
        prefix = folder / "nginx"

        def conf(port: int) -> str:
            values = {
                **_nginx_paths(prefix),
                "server": upstream,
                "listen": f"127.0.0.1:{port} ssl http2",
                "ssl_certificate": _quoted(cert),
                "ssl_certificate_key": _quoted(key),
            }
            return render_conf(FRONT_CONF.read_text(), values)

        # nginx answers the plain-HTTP probe with a 400: it is listening.
        with _nginx(prefix, conf) as origin:
            yield origin.replace("http://", "https://")


@pytest.fixture
def insecure_browser(
    playwright: Playwright, chromium: Path, tmp_path: Path
) -> Iterator[BrowserContext]:
    """Chromium accepting the self-signed certificate."""
    context = playwright.chromium.launch_persistent_context(
        tmp_path / "chromium-profile",
        executable_path=str(chromium),
        headless=True,
        args=[*CHROMIUM_ARGS, "--ignore-certificate-errors"],
        viewport={"width": 1280, "height": 900},
        timeout=30_000,
    )
    context.set_default_timeout(30_000)
    try:
        yield context
    finally:
        context.close()


def test_ohif_loads_a_study_over_http2(
    insecure_browser: BrowserContext, https_origin: str, study: Study, artifacts: Path
) -> None:
    traffic = Traffic.watch(insecure_browser)
    page = insecure_browser.pages[0] if insecure_browser.pages else insecure_browser.new_page()
    page.add_init_script(TIMING_BUFFER)
    page.goto(f"{https_origin}/viewer?StudyInstanceUIDs={study.study_uid}", timeout=PAGE_TIMEOUT_MS)
    stats: list[dict[str, Any]] = []
    protocols: list[list[str]] = []
    try:
        page.locator("canvas.cornerstone-canvas").first.wait_for(
            state="visible", timeout=PAGE_TIMEOUT_MS
        )
        stats = wait_rendered(page)
        traffic.wait_until_quiet(page)
        protocols = page.evaluate(PROTOCOLS)
    finally:
        record(page, traffic, artifacts, "http2-viewer")
        (artifacts / "http2-viewer-protocols.json").write_text(json.dumps(protocols, indent=1))
    assert rendered(stats), f"no viewport shows the image within {RENDER_TIMEOUT} s: {stats}"
    assert_no_failed_requests(traffic)
    frames = traffic.answered(f"{https_origin}/dicomweb/studies/{study.study_uid}/", "/frames/")
    assert frames, "the viewer requested no frame"
    ours = [(url, protocol) for url, protocol in protocols if url.startswith(https_origin)]
    assert any("/frames/" in url for url, _ in ours), ours
    assert ours and all(protocol == "h2" for _, protocol in ours), [
        entry for entry in ours if entry[1] != "h2"
    ]
