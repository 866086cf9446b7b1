"""First image in the real OHIF viewer: progressive (HTJ2K byte ranges) against plain.

    .venv/bin/python benchmarks/progressive.py [--slices 60] [--size 512] [--runs 5]
        [--network loopback|4g ...] [--cache cold|warm ...]

One CT series (``dicomweb_archive.samples``) is converted twice: as it is, and
with HTJ2K alternates (``dwa transcode``).  ``dwa serve`` serves each; OHIF
(npm ``@ohif/app``, ``make ohif``) runs in headless Chromium (Debian's
``/usr/bin/chromium``) on its own nginx, exactly as the browser tests set it up
(``tests/browser/conftest.py``):

* **plain**: OHIF's own retrieve configuration (one streamed request of
  ``…/frames/{n}`` per stack image, native pixels), series thumbnails from a
  native frame (``thumbnailRendering: 'wadors'``);
* **plain, JPEG thumbnails**: the same with ``thumbnailRendering:
  'thumbnail'`` (``…/series/{se}/thumbnail``, a few KB), to tell what the
  thumbnail setting alone gives;
* **progressive**: the recipe of ``deploy/README.md`` (the extension
  ``deploy/ohif-progressive.mjs``, ``progressiveLoading: true``, JPEG
  thumbnails).

Each run opens ``/viewer?StudyInstanceUIDs=…`` in a fresh browser: ``cold``
with an empty profile (nothing cached: the viewer's bundles and the HTJ2K
decoder's WebAssembly are downloaded), ``warm`` with a profile that has
opened another (4-slice) study of the same archive before, so the viewer and
the decoder come from the browser's cache, as for a returning user.
Measured from the page (Cornerstone's ``CORNERSTONE_STACK_NEW_IMAGE`` events)
and from Chromium's network events (DevTools protocol), on one clock:

* time from navigation start to the first image drawn, and to the final
  (full-resolution) one;
* time from the series metadata answer to the first image, and from the
  first pixel request to it (both without OHIF's start-up, which dominates
  on a 2-core machine; the extension holds the pixel requests back until the
  decoder is loaded, so the first is the fairer comparison);
* bytes received from the DICOMweb origin before the first image: all of them
  (QIDO, metadata, pixels) and the pixel requests alone.

Runs alternate between the two configurations; medians are printed as a
Markdown table for ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the browser tests' fixtures are reused as helpers

import pydicom  # noqa: E402
import tests.browser.conftest as browser_conftest  # noqa: E402
from playwright.sync_api import (  # noqa: E402
    BrowserContext,
    CDPSession,
    Page,
    Playwright,
    sync_playwright,
)
from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    DWA_SERVE_SOURCE,
    OHIF_PACKAGE,
    PROGRESSIVE_EXTENSION,
    PROGRESSIVE_EXTENSION_URL,
    PROGRESSIVE_SOURCE,
    Viewer,
    run_dwa_serve,
    serve_viewer,
)

from dicomweb_archive import Converter, ConvertOptions  # noqa: E402
from dicomweb_archive.demo.samples import write_ct_series  # noqa: E402
from dicomweb_archive.transcode.transcoder import TranscodeOptions, Transcoder  # noqa: E402

FULL_RESOLUTION = 8  # Cornerstone's ImageQualityStatus
TIMEOUT_S = 90.0

RECORD_STACK_IMAGES = """
window.__stackImages = [];
window.addEventListener('CORNERSTONE_STACK_NEW_IMAGE', (event) => {
  const {image, imageId} = event.detail || {};
  if (image) {
    window.__stackImages.push({time: Date.now(), imageId, quality: image.imageQualityStatus});
  }
}, true);
"""
PIXEL_PATHS = ("/frames/", "/htj2k/")
#: OHIF's own configuration with the series thumbnails as dwa serve's JPEG.
JPEG_THUMBNAILS_SOURCE: dict[str, object] = {**DWA_SERVE_SOURCE, "thumbnailRendering": "thumbnail"}
CACHES = ("cold", "warm")


@dataclass
class Wire:
    """Chromium's network events for one page, on the wall clock (seconds)."""

    urls: dict[str, str] = field(default_factory=dict)
    sent: dict[str, float] = field(default_factory=dict)
    finished: dict[str, float] = field(default_factory=dict)
    received: list[tuple[float, str, int]] = field(default_factory=list)
    offset: float | None = None  # wall time minus the protocol's monotonic time

    def watch(self, session: CDPSession) -> None:
        session.on("Network.requestWillBeSent", self._sent)
        session.on("Network.dataReceived", self._data)
        session.on("Network.loadingFinished", self._finished)
        session.send("Network.enable")

    def _sent(self, event: dict[str, Any]) -> None:
        if self.offset is None:
            self.offset = event["wallTime"] - event["timestamp"]
        self.urls[event["requestId"]] = event["request"]["url"]
        self.sent[event["requestId"]] = event["timestamp"]

    def _finished(self, event: dict[str, Any]) -> None:
        self.finished[event["requestId"]] = event["timestamp"]

    def _data(self, event: dict[str, Any]) -> None:
        # encodedDataLength: bytes as they came over the wire (gzip metadata
        # compressed); 0 for data that Chromium accounts for elsewhere.
        size = event["encodedDataLength"] or event["dataLength"]
        self.received.append((event["timestamp"], event["requestId"], size))

    def wall(self, timestamp: float) -> float:
        assert self.offset is not None
        return timestamp + self.offset

    def first_pixel_request(self, origin: str) -> float:
        return min(
            self.wall(t)
            for rid, t in self.sent.items()
            if self.urls[rid].startswith(origin) and any(p in self.urls[rid] for p in PIXEL_PATHS)
        )

    def metadata_answered(self, origin: str) -> float:
        """When the last series metadata answer from ``origin`` was complete."""
        return max(
            self.wall(t)
            for rid, t in self.finished.items()
            if self.urls[rid].startswith(origin) and self.urls[rid].endswith("/metadata")
        )

    def bytes_before(self, wall_time: float, wanted: Callable[[str], bool]) -> int:
        """Bytes received by ``wall_time`` for the URLs ``wanted`` accepts."""
        return sum(
            size
            for timestamp, rid, size in self.received
            if self.wall(timestamp) <= wall_time and wanted(self.urls.get(rid, ""))
        )


@dataclass(frozen=True)
class Run:
    first_image_s: float
    final_image_s: float
    metadata_to_image_s: float
    request_to_image_s: float
    bytes_before_first: int
    pixel_bytes_before_first: int
    #: Of those, the requests for the image shown (/frames/ or /htj2k/ of it).
    shown_bytes_before_first: int


#: Chromium's network throttling: None, or (latency ms, down and up bits/s).
#: "4g" is the profile of the Cornerstone3D progressive-loading measurements.
NETWORKS: dict[str, tuple[float, float, float] | None] = {
    "loopback": None,
    "4g": (10.0, 30e6, 5e6),
}


def emulate(session: CDPSession, throttle: tuple[float, float, float] | None) -> None:
    """Chromium's network throttling on the page of ``session``: (latency ms, down and
    up bits/s), or none."""
    if throttle:
        latency, down, up = throttle
        session.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": latency,
                "downloadThroughput": down / 8,
                "uploadThroughput": up / 8,
            },
        )


def _launch(playwright: Playwright, profile: Path, extra: tuple[str, ...] = ()) -> BrowserContext:
    return playwright.chromium.launch_persistent_context(
        profile,
        executable_path=str(CHROMIUM),
        headless=True,
        args=[*CHROMIUM_ARGS, *extra],
        viewport={"width": 1280, "height": 900},
    )


def _wait_for_final(page: Page) -> list[dict[str, Any]]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        images: list[dict[str, Any]] = page.evaluate("window.__stackImages")
        if any(i["quality"] == FULL_RESOLUTION for i in images):
            return images
        page.wait_for_timeout(50)
    raise RuntimeError(f"no full-resolution image within {TIMEOUT_S} s")


def warm_up(playwright: Playwright, viewer: Viewer, study_uid: str, profile: Path) -> None:
    """Opens ``study_uid`` in the profile, so the browser caches the viewer."""
    context = _launch(playwright, profile)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.add_init_script(RECORD_STACK_IMAGES)
        page.goto(f"{viewer.origin}/viewer?StudyInstanceUIDs={study_uid}", timeout=60_000)
        _wait_for_final(page)
        page.wait_for_timeout(1000)
    finally:
        context.close()


def measure(
    playwright: Playwright, viewer: Viewer, study_uid: str, profile: Path, network: str
) -> Run:
    context = _launch(playwright, profile)
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.add_init_script(RECORD_STACK_IMAGES)
        wire = Wire()
        session = context.new_cdp_session(page)
        wire.watch(session)
        emulate(session, NETWORKS[network])
        page.goto(f"{viewer.origin}/viewer?StudyInstanceUIDs={study_uid}", timeout=60_000)
        images = _wait_for_final(page)
        start = page.evaluate("performance.timeOrigin") / 1000
        first = images[0]["time"] / 1000
        final = next(i["time"] for i in images if i["quality"] == FULL_RESOLUTION) / 1000
        origin = viewer.dicomweb.rsplit("/dicomweb", 1)[0]
        frame = images[0]["imageId"].removeprefix("wadors:")
        shown = (frame, frame.replace("/frames/", "/htj2k/"))

        def pixels(url: str) -> bool:
            return url.startswith(origin) and any(p in url for p in PIXEL_PATHS)

        return Run(
            first_image_s=first - start,
            final_image_s=final - start,
            metadata_to_image_s=first - wire.metadata_answered(origin),
            request_to_image_s=first - wire.first_pixel_request(origin),
            bytes_before_first=wire.bytes_before(first, lambda url: url.startswith(origin)),
            pixel_bytes_before_first=wire.bytes_before(first, pixels),
            shown_bytes_before_first=wire.bytes_before(first, lambda url: url in shown),
        )
    finally:
        context.close()


@dataclass(frozen=True)
class Archives:
    plain: Path
    htj2k: Path
    study_uid: str
    warm_up_uid: str  # a small second study, opened to fill the browser's cache
    frame_bytes: int  # one stored frame, native
    htj2k_bytes: int  # the same frame's HTJ2K body


def prepare(work: Path, slices: int, size: int) -> Archives:
    files = write_ct_series(work / "p10", slices=slices, rows=size, columns=size)
    others = write_ct_series(
        work / "p10-warm-up", slices=4, rows=size, columns=size, patient_id="DWA-WARM-UP"
    )
    plain = work / "plain"
    assert Converter(plain, ConvertOptions()).convert([str(f) for f in files + others]).ok
    htj2k = work / "htj2k"
    shutil.copytree(plain, htj2k)
    assert Transcoder(htj2k, TranscodeOptions()).transcode().ok
    uid, other = (
        str(pydicom.dcmread(f[0], stop_before_pixels=True).StudyInstanceUID)
        for f in (files, others)
    )
    assert uid != other
    frame = next(plain.glob(f"studies/{uid}/series/*/instances/*/frames/1"))
    alternate = htj2k / frame.relative_to(plain).parent.parent / "htj2k" / "1"
    return Archives(plain, htj2k, uid, other, frame.stat().st_size, alternate.stat().st_size)


@contextlib.contextmanager
def viewers(work: Path, archives: Archives) -> Iterator[dict[str, Viewer]]:
    dist = OHIF_PACKAGE / "dist"
    with contextlib.ExitStack() as stack:
        plain_root = stack.enter_context(run_dwa_serve(archives.plain, _mkdir(work / "s1")))
        htj2k_root = stack.enter_context(run_dwa_serve(archives.htj2k, _mkdir(work / "s2")))
        plain = stack.enter_context(serve_viewer(work / "v1", dist, plain_root, DWA_SERVE_SOURCE))
        plain_jpeg = stack.enter_context(
            serve_viewer(work / "v3", dist, plain_root, JPEG_THUMBNAILS_SOURCE)
        )
        progressive = stack.enter_context(
            serve_viewer(
                work / "v2",
                dist,
                htj2k_root,
                PROGRESSIVE_SOURCE,
                {PROGRESSIVE_EXTENSION_URL: PROGRESSIVE_EXTENSION},
            )
        )
        yield {"plain": plain, "plain, JPEG thumbnails": plain_jpeg, "progressive": progressive}


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    chromium = subprocess.run(
        [str(CHROMIUM), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"{cpu}, {os.cpu_count()} cores; {platform.platform()}; {chromium}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=60)
    parser.add_argument("--size", type=int, default=512, help="rows and columns")
    parser.add_argument("--runs", type=int, default=5, help="per configuration")
    parser.add_argument(
        "--network", choices=list(NETWORKS), action="append", help="default: all of them"
    )
    parser.add_argument(
        "--gzip-wasm",
        action="store_true",
        help="the viewer's nginx compresses WebAssembly (gzip_types application/wasm)",
    )
    parser.add_argument(
        "--cache", choices=CACHES, action="append", help="default: both (warm: 4g only)"
    )
    args = parser.parse_args()
    if args.gzip_wasm:
        browser_conftest.VIEWER_CONF = browser_conftest.VIEWER_CONF.replace(
            "sendfile on;", "sendfile on;\n    gzip on;\n    gzip_types application/wasm;"
        )
        assert "gzip_types" in browser_conftest.VIEWER_CONF
    networks: list[str] = args.network or list(NETWORKS)
    caches: list[str] = args.cache or list(CACHES)
    # Without --cache, warm runs are made on the throttled network only.
    cases = [
        (network, cache)
        for cache in caches
        for network in networks
        if args.cache or cache == "cold" or network != "loopback"
    ]

    with tempfile.TemporaryDirectory(prefix="dwa-progressive-") as folder:
        work = Path(folder)
        archives = prepare(work, args.slices, args.size)
        results: dict[tuple[str, str, str], list[Run]] = {}
        with viewers(work, archives) as by_name, sync_playwright() as playwright:
            for network, cache in cases:
                for run in range(args.runs):
                    for name, viewer in by_name.items():
                        profile = work / f"profile-{network}-{cache}-{name}-{run}".replace(" ", "")
                        if cache == "warm":
                            warm_up(playwright, viewer, archives.warm_up_uid, profile)
                        result = measure(playwright, viewer, archives.study_uid, profile, network)
                        results.setdefault((network, cache, name), []).append(result)
                        label = f"{network} {cache} {name:22} run {run + 1}"
                        print(f"{label}: {result}", file=sys.stderr)

    print(
        f"\n{datetime.date.today()}; {_machine()}; OHIF (npm @ohif/app) from "
        f"{OHIF_PACKAGE}; CT {args.slices} x {args.size}x{args.size}, one frame "
        f"{archives.frame_bytes} B stored, {archives.htj2k_bytes} B HTJ2K; "
        f"medians of {args.runs} runs each"
        f"{'; the viewer serves .wasm gzip-compressed' if args.gzip_wasm else ''}.\n"
    )
    print(
        "| Network | Cache | Configuration | First image | Final image "
        "| Metadata → first image | Pixel request → first image "
        "| Bytes before first image: all / pixels / the image shown |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (network, cache, name), runs in results.items():

        def med(attr: str, runs: list[Run] = runs) -> float:
            return float(statistics.median(getattr(r, attr) for r in runs))

        print(
            f"| {network} | {cache} | {name} | {med('first_image_s'):.2f} s "
            f"| {med('final_image_s'):.2f} s | {med('metadata_to_image_s') * 1000:.0f} ms "
            f"| {med('request_to_image_s') * 1000:.0f} ms "
            f"| {med('bytes_before_first') / 1024:.0f} KiB / "
            f"{med('pixel_bytes_before_first') / 1024:.0f} KiB / "
            f"{med('shown_bytes_before_first') / 1024:.1f} KiB |"
        )


if __name__ == "__main__":
    main()
