"""Progressive loading in the real OHIF viewer against ``dwa serve`` (deploy/README.md).

The viewer is configured exactly as the deployment recipe says: the extension
``deploy/ohif-progressive.mjs`` served on the viewer's origin and listed in
``extensions``, and ``progressiveLoading: true`` on the data source.  The
archive has HTJ2K alternates (``dwa transcode``).

What is checked, from the page itself:

* stack: the shown image is fetched as a byte range of ``…/htj2k/{n}``
  (``206`` with a numeric total), Cornerstone displays it as a lower-quality
  image first, and the rest of the same body (``bytes=N-``) replaces it with
  the full-resolution one.  The final request is held back until the lossy
  image is on the canvas, so the test sees it drawn (and screenshots it)
  however fast the loopback is.
* volume (OHIF's MPR layout): slices are fetched lossy first (first bytes)
  and completed afterwards, every viewport draws the volume.
* the HTJ2K decoder is loaded before the first HTJ2K request (the extension
  loads it while OHIF starts up), and the series thumbnail is the JPEG of
  ``…/series/{se}/thumbnail``, not a native frame;
* no request fails or is answered with an error.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Route

from tests.browser.conftest import (
    PROGRESSIVE_EXTENSION,
    PROGRESSIVE_EXTENSION_URL,
    PROGRESSIVE_SOURCE,
    Study,
    Viewer,
    serve_viewer,
)
from tests.browser.pages import (
    CANVAS_STATS,
    PAGE_TIMEOUT_MS,
    RENDER_TIMEOUT,
    Exchange,
    Traffic,
    assert_no_failed_requests,
    record,
    rendered,
    wait_rendered,
)

pytestmark = pytest.mark.browser

#: Cornerstone's ImageQualityStatus.FULL_RESOLUTION.
FULL_RESOLUTION = 8
RPCL = "1.2.840.10008.1.2.4.202"

#: Every image a StackViewport displays, as Cornerstone announces it on the
#: viewport element (CORNERSTONE_STACK_NEW_IMAGE does not bubble, so it is
#: caught on the way down, in the capture phase).
RECORD_STACK_IMAGES = """
window.__stackImages = [];
window.addEventListener('CORNERSTONE_STACK_NEW_IMAGE', (event) => {
  const {image, imageId} = event.detail || {};
  if (!image) return;
  window.__stackImages.push({
    time: Date.now(), imageId, quality: image.imageQualityStatus,
    width: image.width, height: image.height,
  });
}, true);
"""

#: A fingerprint of what the viewport canvases show, to tell two drawings apart.
CANVAS_DIGEST = """
() => [...document.querySelectorAll('canvas.cornerstone-canvas')].map((canvas) => {
  const {data} = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  let hash = 0;
  for (let i = 0; i < data.length; i += 1) hash = (hash * 31 + data[i]) | 0;
  return hash;
}).join(',')
"""

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)$")


@pytest.fixture(scope="module")
def progressive_viewer(
    tmp_path_factory: pytest.TempPathFactory, ohif_dist: Path, dwa_serve_htj2k: str
) -> Iterator[Viewer]:
    prefix = tmp_path_factory.mktemp("viewer-progressive")
    extensions = {PROGRESSIVE_EXTENSION_URL: PROGRESSIVE_EXTENSION}
    with serve_viewer(prefix, ohif_dist, dwa_serve_htj2k, PROGRESSIVE_SOURCE, extensions) as viewer:
        yield viewer


def _wait_for(page: Page, expression: str, what: str) -> Any:
    """Poll ``expression`` in the page until it is truthy; its value."""
    deadline = time.monotonic() + RENDER_TIMEOUT
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        page.wait_for_timeout(100)
    pytest.fail(f"not within {RENDER_TIMEOUT} s: {what}")


def _content_range(exchange: Exchange) -> tuple[int, int, int]:
    assert exchange.response is not None
    header = exchange.response.headers.get("content-range", "")
    match = _CONTENT_RANGE.match(header)
    assert match, f"{exchange.request.url}: Content-Range {header!r} has no numeric total"
    start, end, total = (int(v) for v in match.groups())
    return start, end, total


def _htj2k_url(image_id: str) -> str:
    url = image_id.removeprefix("wadors:")
    assert "/frames/" in url, image_id
    return url.replace("/frames/", "/htj2k/")


def test_stack_shows_a_lossy_image_then_the_final_one(
    progressive_viewer: Viewer, browser: BrowserContext, study: Study, artifacts: Path
) -> None:
    traffic = Traffic.watch(browser)
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.add_init_script(RECORD_STACK_IMAGES)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    held: list[Route] = []
    holding = [True]

    def hold_final_ranges(route: Route) -> None:
        # The second stage continues the body (bytes=N- with N > 0): held
        # until the lossy image has been seen on the canvas.
        wanted = route.request.headers.get("range", "")
        if holding[0] and wanted.startswith("bytes=") and not wanted.startswith("bytes=0-"):
            held.append(route)
        else:
            route.continue_()

    page.route(re.compile(r"/htj2k/\d+$"), hold_final_ranges)
    page.goto(
        f"{progressive_viewer.origin}/viewer?StudyInstanceUIDs={study.study_uid}",
        timeout=PAGE_TIMEOUT_MS,
    )
    name = "progressive-stack"
    lossy_stats: list[dict[str, Any]] = []
    final_stats: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    try:
        first = _wait_for(
            page,
            f"window.__stackImages.find((i) => i.quality < {FULL_RESOLUTION})",
            "a lossy image in the stack viewport",
        )
        lossy_stats = wait_rendered(page)
        lossy_digest = page.evaluate(CANVAS_DIGEST)
        page.screenshot(path=artifacts / f"{name}-lossy.png")
        assert held, "the final stage was not requested as a continuation byte range"
        holding[0] = False
        for route in held:
            route.continue_()
        _wait_for(
            page,
            "window.__stackImages.find((i) => i.imageId === "
            f"{json.dumps(first['imageId'])} && i.quality === {FULL_RESOLUTION})",
            "the full-resolution image replacing the lossy one",
        )
        final_stats = wait_rendered(page)
        traffic.wait_until_quiet(page)
        final_digest = page.evaluate(CANVAS_DIGEST)
        images = page.evaluate("window.__stackImages")
    finally:
        record(page, traffic, artifacts, name)
        (artifacts / f"{name}-images.json").write_text(
            json.dumps(
                {"images": images, "lossy": lossy_stats, "final": final_stats, "console": console}
            )
        )

    # Drawn twice: the lossy image first, then the final one, for the same slice.
    assert rendered(lossy_stats), f"the lossy image is not drawn: {lossy_stats}"
    assert rendered(final_stats), f"the final image is not drawn: {final_stats}"
    shown = [i for i in images if i["imageId"] == first["imageId"]]
    qualities = [i["quality"] for i in shown]
    assert qualities[0] < FULL_RESOLUTION and FULL_RESOLUTION in qualities[1:], shown
    assert lossy_digest != final_digest, "the final image did not change the drawing"

    # On the wire: the first bytes of the HTJ2K body, then the rest of it.
    url = _htj2k_url(first["imageId"])
    exchanges = [e for e in traffic.exchanges.values() if e.request.url == url]
    ranged = [e for e in exchanges if "range" in e.request.headers]
    assert len(ranged) == 2, [e.request.headers for e in exchanges]
    head, tail = ranged
    assert head.request.headers["range"].startswith("bytes=0-")
    assert head.response is not None and head.response.status == 206
    assert tail.response is not None and tail.response.status == 206
    start, end, total = _content_range(head)
    assert start == 0 and end < total - 1, "the first range was the whole frame"
    rest_start, rest_end, rest_total = _content_range(tail)
    assert (rest_start, rest_end, rest_total) == (end + 1, total - 1, total)
    assert f"transfer-syntax={RPCL}" in head.response.body()[:400].decode("latin-1")
    # The first request for that image's pixels was this range (no whole
    # frame fetched before it, nor /frames/ for it).
    frame_url = first["imageId"].removeprefix("wadors:")
    for_image = [e for e in traffic.exchanges.values() if e.request.url in (url, frame_url)]
    assert for_image[0] is head, [e.request.url for e in for_image]

    # The HTJ2K decoder (WebAssembly) was loaded before any HTJ2K byte was
    # asked for: the extension loads it in the decoding workers while OHIF
    # starts up and holds the image requests until then, so no decode starts
    # a load of its own (a second download of the decoder).
    in_order = [e.request.url for e in traffic.exchanges.values()]
    decoder = [i for i, u in enumerate(in_order) if urlsplit(u).path.endswith(".wasm")]
    first_htj2k = next(i for i, u in enumerate(in_order) if "/htj2k/" in u)
    assert decoder and max(decoder) < first_htj2k, [in_order[i] for i in decoder]
    # The series thumbnail is dwa serve's JPEG; no native frame is fetched.
    assert any(urlsplit(u).path.endswith("/thumbnail") for u in in_order), in_order
    assert not [u for u in in_order if "/frames/" in u]
    assert_no_failed_requests(traffic)


def test_volume_loads_lossy_slices_first(
    progressive_viewer: Viewer, browser: BrowserContext, study: Study, artifacts: Path
) -> None:
    traffic = Traffic.watch(browser)
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.goto(
        f"{progressive_viewer.origin}/viewer?StudyInstanceUIDs={study.study_uid}"
        "&hangingProtocolId=mpr",
        timeout=PAGE_TIMEOUT_MS,
    )
    name = "progressive-volume"
    stats: list[dict[str, Any]] = []
    try:
        page.locator("canvas.cornerstone-canvas").first.wait_for(
            state="visible", timeout=PAGE_TIMEOUT_MS
        )
        stats = wait_rendered(page)
        traffic.wait_until_quiet(page)
        stats = page.evaluate(CANVAS_STATS)
    finally:
        record(page, traffic, artifacts, name)
        (artifacts / f"{name}-canvas.json").write_text(json.dumps(stats))
    # The axial viewport shows the slice; the sagittal and coronal ones the
    # 40-slice volume's thin band (little of their area lit, but drawn).
    assert rendered(stats), f"no MPR viewport draws the volume: {stats}"
    assert len(stats) == 3 and all(s["levels"] >= 32 and s["lit"] >= 0.01 for s in stats), stats

    by_url: dict[str, list[Exchange]] = {}
    for e in traffic.exchanges.values():
        if "/htj2k/" in e.request.url and e.response is not None:
            by_url.setdefault(e.request.url, []).append(e)
    # Every slice came from the HTJ2K alternate.
    assert len(by_url) == study.slices, sorted(by_url)
    # Lossy first: Cornerstone's fast stages ask for the first bytes of every
    # other slice; its final stages continue exactly where those stopped.  The
    # first three images (middle, first, last) come whole, without a range.
    lossy_first = []
    for url, exchanges in by_url.items():
        first = exchanges[0]
        if first.response is not None and first.response.status == 200:
            assert len(exchanges) == 1 and "range" not in first.request.headers, url
            continue
        start, end, total = _content_range(first)
        assert start == 0, url
        if end < total - 1:
            assert len(exchanges) == 2, [e.request.headers.get("range") for e in exchanges]
            assert _content_range(exchanges[1]) == (end + 1, total - 1, total), url
            lossy_first.append(url)
    assert len(lossy_first) >= study.slices // 3, sorted(lossy_first)
    assert_no_failed_requests(traffic)
