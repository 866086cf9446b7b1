"""OHIF opening a whole CT series: ``dwa serve`` against Orthanc, over HTTP/1.1 and HTTP/2.

    .venv/bin/python benchmarks/viewer.py [--slices 300] [--size 512] [--runs 3]
        [--network loopback|wan ...]

The synthetic CT series of ``benchmarks/convert.py`` (300 slices of 512x512)
is stored twice: converted into an archive served by ``dwa serve``, and sent
into an Orthanc (Debian's ``orthanc`` with ``orthanc-dicomweb``, installed
when missing) started on loopback with a configuration and storage of its own.

Each server sits behind the same nginx front (the browser tests' viewer
configuration with the additions below), which serves the OHIF viewer (npm
``@ohif/app``, ``make ohif``) and passes ``/dicomweb/`` to the server: plain
HTTP/1.1 on one port, TLS with HTTP/2 on another (a
self-signed certificate made here), so the viewer and its data share one
origin as deployments have it.  OHIF's data source is the same for both
(streamed ``…/frames/{n}``, native pixels, series thumbnails as frames), with
OHIF's study prefetcher on for the displayed series (25 requests in flight), so
the viewer fetches every slice.

Each run opens ``/viewer?StudyInstanceUIDs=…`` in headless Chromium (Debian's
``/usr/bin/chromium``) with a profile that has loaded the viewer once before
(its bundles cached, no image), and records, from navigation start:

* **first image**: Cornerstone's first ``CORNERSTONE_STACK_NEW_IMAGE``;
* **whole series**: the last of the series' frame answers (Chromium's network
  events), every slice fetched and cached by the viewer.

Each combination is measured on the loopback as it is and on an emulated
wide-area network (``--network wan``: 40 ms round trip, 100 Mbit/s each way),
Chromium's own throttling through the DevTools protocol
(``Network.emulateNetworkConditions``).  That throttling acts in the browser's
network stack, per request: it adds the latency to each answer and shares the
throughput among all of them.  It does not delay TCP or TLS handshakes, nor
model TCP's slow start and congestion window, nor HTTP/2's flow-control
windows; so it understates what a real 40 ms path costs, and it favours
neither protocol beyond what it models: the requests queued for one of the
six HTTP/1.1 connections each wait the latency, the HTTP/2 streams of one
connection wait it together.

Runs alternate over the combinations; medians are printed as Markdown for
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(REPO), str(HERE)]  # the browser tests' helpers, the generated series

from playwright.sync_api import Playwright, sync_playwright  # noqa: E402
from progressive import RECORD_STACK_IMAGES, Wire, _launch, _machine, emulate  # noqa: E402
from serve import apt_install, ensure_program, free_port  # noqa: E402
from tests.browser.conftest import (  # noqa: E402
    OHIF_PACKAGE,
    VIEWER_CONF,
    _nginx,
    _nginx_paths,
    _quoted,
    app_config,
    run_dwa_serve,
    self_signed,
)
from tests.integration.conftest import render_conf  # noqa: E402

from convert import generate  # noqa: E402
from dicomweb_archive import Converter, ConvertOptions  # noqa: E402

WORK = HERE / "work" / "viewer"
TIMEOUT_S = 300.0
ORTHANC_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
#: OHIF's data source, the same for both servers (behind the front at /dicomweb).
DATA_SOURCE: dict[str, object] = {
    "qidoRoot": "/dicomweb",
    "wadoRoot": "/dicomweb",
    "imageRendering": "wadors",
    "thumbnailRendering": "wadors",
    "enableStudyLazyLoad": True,
    "supportsWildcard": True,
    "omitQuotationForMultipartRequest": True,
    "bulkDataURI": {"enabled": True},
}
#: Every slice of the displayed series, OHIF's usual 25 requests in flight.
PREFETCHER = {
    "enabled": True,
    "displaySetsCount": 1,
    "maxNumPrefetchRequests": 25,
    "order": "closest",
}
#: The networks between browser and front: Chromium's throttling (DevTools
#: protocol ``Network.emulateNetworkConditions``): None, or (latency ms, down
#: and up bits/s).  "wan": 40 ms round trip, 100 Mbit/s each way.
NETWORKS: dict[str, tuple[float, float, float] | None] = {
    "loopback": None,
    "wan": (40.0, 100e6, 100e6),
}
#: What the front adds to the viewer's nginx of the browser tests (``VIEWER_CONF``).
UPSTREAM = "    upstream backend {{ server {upstream}; keepalive 32; }}\n\n    server {{\n"
TLS = """\
        listen 127.0.0.1:{h2} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        http2_max_concurrent_streams 256;
"""
PASS = """\
        location /dicomweb/ {{
            proxy_pass http://backend{prefix}/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host:$server_port;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffers 16 64k;
            proxy_busy_buffers_size 128k;
            proxy_max_temp_file_size 0;
            proxy_read_timeout 300s;
        }}
"""


@dataclass(frozen=True)
class Front:
    """The viewer and one server behind nginx: an origin per protocol."""

    h1: str
    h2: str


@contextlib.contextmanager
def front(prefix: Path, upstream: str, path: str, cert: Path, key: Path) -> Iterator[Front]:
    """nginx serving OHIF with ``/dicomweb/`` passed to ``upstream`` (``path`` there)."""
    prefix.mkdir(parents=True, exist_ok=True)
    config = prefix / "app-config.js"
    settings = {**app_config(DATA_SOURCE), "studyPrefetcher": PREFETCHER}
    config.write_text(f"window.config = {json.dumps(settings, indent=2)};\n")
    h2 = free_port()

    def conf(port: int) -> str:
        listen = f"        listen 127.0.0.1:{port};\n"
        template = VIEWER_CONF.replace("    server {{\n", UPSTREAM, 1)
        template = template.replace("        listen 127.0.0.1:{port};\n", listen + TLS, 1)
        text = template.format(
            port=port,
            dist=_quoted(OHIF_PACKAGE / "dist"),
            config=_quoted(config),
            extra_locations=PASS.format(prefix=path.rstrip("/")),
            upstream=upstream,
            h2=h2,
            cert=_quoted(cert),
            key=_quoted(key),
        )
        return render_conf(text, _nginx_paths(prefix))

    with _nginx(prefix, conf, "/app-config.js") as origin:
        yield Front(origin, f"https://127.0.0.1:{h2}")


@contextlib.contextmanager
def orthanc(storage: Path, files: list[Path]) -> Iterator[str]:
    """Orthanc on loopback with its own configuration and storage, holding ``files``."""
    binary = ensure_program("Orthanc", "orthanc")
    if not ORTHANC_PLUGIN.exists():
        apt_install("orthanc-dicomweb")
    shutil.rmtree(storage, ignore_errors=True)
    storage.mkdir(parents=True)
    port = free_port()
    config = {
        "Name": "benchmark",
        "StorageDirectory": str(storage / "db"),
        "IndexDirectory": str(storage / "db"),
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "Plugins": [str(ORTHANC_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }
    (storage / "orthanc.json").write_text(json.dumps(config, indent=1))
    with open(storage / "orthanc.log", "wb") as log:
        process = subprocess.Popen(
            [binary, str(storage / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT
        )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{origin}/system", timeout=5).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"Orthanc did not start: {storage / 'orthanc.log'}") from None
                time.sleep(0.2)
        for path in files:
            request = urllib.request.Request(
                f"{origin}/instances", data=path.read_bytes(), method="POST"
            )
            urllib.request.urlopen(request, timeout=60).read()
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=60)


@dataclass(frozen=True)
class Run:
    first_image_s: float
    whole_series_s: float
    frames: int


def measure(
    playwright: Playwright, origin: str, study_uid: str, slices: int, profile: Path, network: str
) -> Run:
    """One opening of the study in a profile that has loaded the viewer before."""
    context = _launch(playwright, profile, ("--ignore-certificate-errors",))
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(f"{origin}/", timeout=120_000)  # the viewer's bundles, cached
        page.wait_for_load_state("networkidle", timeout=120_000)
        page.add_init_script(RECORD_STACK_IMAGES)
        wire = Wire()
        session = context.new_cdp_session(page)
        wire.watch(session)
        emulate(session, NETWORKS[network])
        page.goto(f"{origin}/viewer?StudyInstanceUIDs={study_uid}", timeout=120_000)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            frames = _frames_finished(wire, origin)
            images: list[dict[str, Any]] = page.evaluate("window.__stackImages")
            if images and len(frames) >= slices:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{origin}: {len(frames)} of {slices} frames in {TIMEOUT_S} s")
            page.wait_for_timeout(100)
        start = page.evaluate("performance.timeOrigin") / 1000
        return Run(images[0]["time"] / 1000 - start, max(frames.values()) - start, len(frames))
    finally:
        context.close()


def _frames_finished(wire: Wire, origin: str) -> dict[str, float]:
    """Frame URLs answered whole, with when (wall clock)."""
    done: dict[str, float] = {}
    for rid, finished in list(wire.finished.items()):
        url = wire.urls.get(rid, "")
        if url.startswith(origin) and "/frames/" in url:
            done[url] = min(done.get(url, float("inf")), wire.wall(finished))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512, help="rows and columns")
    parser.add_argument("--runs", type=int, default=3, help="per combination")
    parser.add_argument(
        "--network", choices=list(NETWORKS), action="append", help="default: all of them"
    )
    args = parser.parse_args()
    args.network = args.network or list(NETWORKS)

    source = generate(args.slices, args.size, args.size)
    files = sorted(source.glob("*.dcm"))
    archive = WORK / "archive"
    shutil.rmtree(archive, ignore_errors=True)
    workers = os.cpu_count() or 1
    result = Converter(archive, ConvertOptions(workers=workers)).convert([str(source)])
    if not result.ok or result.counts["converted"] != args.slices:
        raise SystemExit(f"conversion failed: {result.to_json()}")
    study_uid = next(p.name for p in (archive / "studies").iterdir() if p.is_dir())
    cert, key = self_signed(_mkdir(WORK / "tls"))
    results: dict[tuple[str, str, str], list[Run]] = {}
    with contextlib.ExitStack() as stack:
        ours = stack.enter_context(
            run_dwa_serve(archive, _mkdir(WORK / "dwa"), ["--no-access-log"])
        )
        theirs = stack.enter_context(orthanc(WORK / "orthanc", files))
        fronts = {
            "dwa serve": stack.enter_context(
                front(WORK / "front-dwa", ours.split("//")[1].split("/")[0], "/dicomweb", cert, key)
            ),
            "Orthanc": stack.enter_context(
                front(WORK / "front-orthanc", theirs, "/dicom-web", cert, key)
            ),
        }
        with sync_playwright() as playwright:
            for run in range(args.runs):
                for network in args.network:
                    for protocol in ("HTTP/1.1", "HTTP/2"):
                        for name, served in fronts.items():
                            case = (network, name, protocol)
                            origin = served.h1 if protocol == "HTTP/1.1" else served.h2
                            label = "-".join((*case, str(run))).replace("/", "")
                            profile = WORK / "profiles" / label.replace(" ", "")
                            shutil.rmtree(profile, ignore_errors=True)
                            measured = measure(
                                playwright, origin, study_uid, args.slices, profile, network
                            )
                            results.setdefault(case, []).append(measured)
                            print(f"{' '.join(case)} run {run + 1}: {measured}", file=sys.stderr)
    report(results, args, files[0].stat().st_size)


def report(
    results: dict[tuple[str, str, str], list[Run]], args: argparse.Namespace, size: int
) -> None:
    def med(runs: list[Run], attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in runs))

    print(
        f"\n{datetime.date.today()}; {_machine()}; OHIF (npm @ohif/app) from {OHIF_PACKAGE}; "
        f"Orthanc {_orthanc_version()} with its DICOMweb plugin; CT {args.slices} x "
        f"{args.size}x{args.size} (P10 files of {size:,} B); medians of {args.runs} runs.\n"
    )
    print(
        "| Network | Server | Protocol | First image | Whole series "
        "| vs Orthanc (whole series) | runs (first / whole, s) |"
    )
    print("|---|---|---|---:|---:|---:|---|")
    for (network, name, protocol), runs in sorted(
        results.items(), key=lambda kv: (args.network.index(kv[0][0]), kv[0][2], kv[0][1])
    ):
        orthanc_runs = results[(network, "Orthanc", protocol)]
        ratio = med(runs, "whole_series_s") / med(orthanc_runs, "whole_series_s")
        each = ", ".join(f"{r.first_image_s:.1f}/{r.whole_series_s:.1f}" for r in runs)
        print(
            f"| {_network(network)} | {name} | {protocol} | {med(runs, 'first_image_s'):.2f} s "
            f"| {med(runs, 'whole_series_s'):.2f} s | {ratio:.2f} | {each} |"
        )


def _network(name: str) -> str:
    throttle = NETWORKS[name]
    if throttle is None:
        return name
    latency, down, up = throttle
    return f"{name} ({latency:g} ms, {down / 1e6:g}/{up / 1e6:g} Mbit/s)"


def _orthanc_version() -> str:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "orthanc"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "?"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    main()
