"""OHIF opening a whole CT series: ``dwa serve`` against Orthanc, over HTTP/1.1 and HTTP/2.

    .venv/bin/python benchmarks/viewer.py [--slices 300] [--size 512] [--runs 3]
        [--network loopback|wan ...]

The synthetic CT series of ``benchmarks/convert.py`` (300 slices of 512x512)
is stored three times: converted into an archive served by ``dwa serve``; the
same archive after ``dwa transcode`` (HTJ2K Lossless alternates), served by
``dwa serve --viewer``; and sent into an Orthanc (Debian's ``orthanc`` with
``orthanc-dicomweb``, installed when missing) started on loopback with a
configuration and storage of its own.

Each server sits behind the same nginx front (the browser tests' viewer
configuration with the additions below), which serves the OHIF viewer (npm
``@ohif/app``, ``make ohif``) and passes ``/dicomweb/`` to the server: plain
HTTP/1.1 on one port, TLS with HTTP/2 on another (a
self-signed certificate made here), so the viewer and its data share one
origin as deployments have it.  OHIF's data source is the same for Orthanc and
the first ``dwa serve`` (streamed ``…/frames/{n}``, native pixels, series
thumbnails as frames); over the alternates it is what ``dwa serve --viewer``
serves OHIF itself (its ``app-config.js`` and progressive-loading extension,
fetched from it: the shown slice from the first 16 KiB of ``…/htj2k/{n}``
then the rest, every other slice as one request of ``…/htj2k/{n}``, JPEG
series thumbnails).  For all three OHIF's study prefetcher is on for the
displayed series (25 requests in flight), so the viewer fetches every slice,
with 2 decoding workers at most (OHIF keeps to one fewer than the cores).

Each run opens ``/viewer?StudyInstanceUIDs=…`` in headless Chromium (Debian's
``/usr/bin/chromium``) with a profile that has loaded the viewer once before
(its bundles cached, no image), and records, from navigation start:

* **first image**: Cornerstone's first ``CORNERSTONE_STACK_NEW_IMAGE``;
* **whole series**: the last of the series' pixel answers (Chromium's network
  events, ``seriesload.py``) once every slice has been answered whole (a 200,
  or the 206 ending at the last byte: progressive loading's final request),
  no pixel request is open and the shown image is at full resolution; a
  failed request ends the benchmark, and so does a slice of the alternates'
  configuration that did not come as HTJ2K;
* the pixel bytes on the wire and requests, and CPU seconds by where they
  went: Chromium's decoding workers, its renderer's main thread, its GPU
  process (SwiftShader), its network service, the rest of it, and the
  servers with their fronts (``/proc``); with the share of all cores busy.

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
``benchmarks/README.md``, with each round's ratio to Orthanc (the machine's
load changes between rounds) and the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import statistics
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

from browsercpu import CPU_KINDS, busy_since, cpu, machine_times  # noqa: E402
from orthancserver import orthanc, orthanc_version  # noqa: E402
from playwright.sync_api import Playwright, sync_playwright  # noqa: E402
from progressive import FULL_RESOLUTION, RECORD_STACK_IMAGES, _launch, _machine, emulate  # noqa: E402
from seriesload import HTJ2K, NATIVE, SeriesWire, series_load  # noqa: E402
from serve import free_port  # noqa: E402
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
from dicomweb_archive.transcode.transcoder import TranscodeOptions, Transcoder  # noqa: E402
from dicomweb_archive.viewer.config import PROGRESSIVE_URL  # noqa: E402

WORK = HERE / "work" / "viewer"
TIMEOUT_S = 300.0
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


@dataclass(frozen=True)
class ViewerConfig:
    """OHIF's ``window.config`` and the files the front serves beside it (URL -> file)."""

    settings: dict[str, Any]
    files: dict[str, Path]

    def for_benchmark(self) -> dict[str, Any]:
        """The same for every server: every slice fetched, the test machine's workers."""
        return {**self.settings, "studyPrefetcher": PREFETCHER, "maxNumberOfWebWorkers": 2}


@contextlib.contextmanager
def front(
    prefix: Path, upstream: str, path: str, viewer: ViewerConfig, cert: Path, key: Path
) -> Iterator[Front]:
    """nginx serving OHIF with ``/dicomweb/`` passed to ``upstream`` (``path`` there)."""
    prefix.mkdir(parents=True, exist_ok=True)
    config = prefix / "app-config.js"
    config.write_text(f"window.config = {json.dumps(viewer.for_benchmark(), indent=2)};\n")
    h2 = free_port()
    files = "".join(
        f"        location = {url} {{\n            alias {_quoted(file)};\n        }}\n"
        for url, file in viewer.files.items()
    )

    def conf(port: int) -> str:
        listen = f"        listen 127.0.0.1:{port};\n"
        template = VIEWER_CONF.replace("    server {{\n", UPSTREAM, 1)
        template = template.replace("        listen 127.0.0.1:{port};\n", listen + TLS, 1)
        text = template.format(
            port=port,
            dist=_quoted(OHIF_PACKAGE / "dist"),
            config=_quoted(config),
            extra_locations=files + PASS.format(prefix=path.rstrip("/")),
            upstream=upstream,
            h2=h2,
            cert=_quoted(cert),
            key=_quoted(key),
        )
        return render_conf(text, _nginx_paths(prefix))

    with _nginx(prefix, conf, "/app-config.js") as origin:
        yield Front(origin, f"https://127.0.0.1:{h2}")


def product_viewer(root: str, folder: Path) -> ViewerConfig:
    """What ``dwa serve --viewer`` at ``root`` (its DICOMweb root) serves OHIF: its
    ``app-config.js`` and, when it lists it, the progressive-loading extension."""
    origin = root.rsplit("/dicomweb", 1)[0]
    script = urllib.request.urlopen(f"{origin}/app-config.js", timeout=30).read().decode()
    settings = json.loads(script.removeprefix("window.config = ").strip().removesuffix(";"))
    files = {}
    for url in settings["extensions"]:
        files[url] = folder / url.lstrip("/")
        files[url].write_bytes(urllib.request.urlopen(f"{origin}{url}", timeout=30).read())
    return ViewerConfig(settings, files)


#: The configurations measured, in the order of each round.
ORTHANC, OURS, OURS_HTJ2K = "Orthanc", "`dwa serve`", "`dwa serve`, HTJ2K alternates"
ORDER = (ORTHANC, OURS, OURS_HTJ2K)


@contextlib.contextmanager
def servers(
    archive: Path, alternates: Path, files: list[Path], cert: Path, key: Path
) -> Iterator[dict[str, Front]]:
    """The three configurations, each behind its front.

    Orthanc and ``dwa serve`` over the converted archive with OHIF's usual
    data source (native frames); ``dwa serve --viewer`` over the archive with
    HTJ2K alternates with the configuration it serves OHIF itself (the
    progressive-loading extension switched on; its ``app-config.js`` and the
    extension are taken from it and served by the front like the others').
    """
    plain = ViewerConfig(app_config(DATA_SOURCE), {})
    dist = str(OHIF_PACKAGE / "dist")
    with contextlib.ExitStack() as stack:
        ours = stack.enter_context(
            run_dwa_serve(archive, _mkdir(WORK / "dwa"), ["--no-access-log"])
        )
        htj2k = stack.enter_context(
            run_dwa_serve(
                alternates, _mkdir(WORK / "dwa-htj2k"), ["--no-access-log", "--viewer", dist]
            )
        )
        product = product_viewer(htj2k, _mkdir(WORK / "dwa-htj2k" / "viewer"))
        source = product.settings["dataSources"][0]["configuration"]
        if not source.get("progressiveLoading") or PROGRESSIVE_URL not in product.files:
            raise SystemExit(f"dwa serve --viewer did not switch progressive loading on: {source}")
        theirs = stack.enter_context(orthanc(WORK / "orthanc", files))

        def behind(name: str, upstream: str, path: str, viewer: ViewerConfig) -> Front:
            return stack.enter_context(front(WORK / name, upstream, path, viewer, cert, key))

        yield {
            ORTHANC: behind("front-orthanc", theirs, "/dicom-web", plain),
            OURS: behind("front-dwa", _host(ours), "/dicomweb", plain),
            OURS_HTJ2K: behind("front-dwa-htj2k", _host(htj2k), "/dicomweb", product),
        }


def _host(root: str) -> str:
    return root.split("//")[1].split("/")[0]


@dataclass(frozen=True)
class Run:
    first_image_s: float
    whole_series_s: float
    htj2k_slices: int  # slices whose pixels came as HTJ2K (…/htj2k/{n})
    native_slices: int  # …/frames/{n}
    requests: int  # pixel requests
    pixel_mb: float  # pixel bytes received (MB)
    pixel_mbit_s: float  # the same per second, first pixel request to last answer
    mean_open: float  # pixel requests open on average over that time
    cpu_s: dict[str, float]  # by ``CPU_KINDS``, from navigation to the whole series
    machine_busy: float  # of all cores, over the same time
    load: float  # the 1-minute load average when the run started
    encodings: str  # the pixel answers' Content-Encoding


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
        wire = SeriesWire()
        session = context.new_cdp_session(page)
        wire.watch(session)
        emulate(session, NETWORKS[network])
        before, machine, loadavg = cpu(), machine_times(), os.getloadavg()[0]
        page.goto(f"{origin}/viewer?StudyInstanceUIDs={study_uid}", timeout=120_000)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            load = series_load(wire, origin)
            if load.failed:
                raise SystemExit(f"{origin}: failed requests {load.failed[:5]}")
            images: list[dict[str, Any]] = page.evaluate("window.__stackImages")
            shown = any(i["quality"] == FULL_RESOLUTION for i in images)
            if shown and len(load.fetched) >= slices and not load.open_requests:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{origin}: {len(load.fetched)} of {slices} in {TIMEOUT_S} s")
            page.wait_for_timeout(100)
        busy = busy_since(machine)
        used = {kind: seconds - before[kind] for kind, seconds in cpu().items()}
        start = page.evaluate("performance.timeOrigin") / 1000
        return Run(
            first_image_s=images[0]["time"] / 1000 - start,
            whole_series_s=load.last_answer - start,
            htj2k_slices=load.slices(HTJ2K),
            native_slices=load.slices(NATIVE),
            requests=load.requests,
            pixel_mb=load.pixel_bytes / 1e6,
            pixel_mbit_s=load.mbit_s(),
            mean_open=load.mean_open(),
            cpu_s=used,
            machine_busy=busy,
            load=loadavg,
            encodings=",".join(sorted(load.encodings)) or "identity",
        )
    finally:
        context.close()


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
    alternates = WORK / "archive-htj2k"
    shutil.rmtree(alternates, ignore_errors=True)
    shutil.copytree(archive, alternates)
    if not Transcoder(alternates, TranscodeOptions(workers=workers)).transcode().ok:
        raise SystemExit("dwa transcode failed")
    cert, key = self_signed(_mkdir(WORK / "tls"))
    results: dict[tuple[str, str, str], list[Run]] = {}
    with contextlib.ExitStack() as stack:
        fronts = stack.enter_context(servers(archive, alternates, files, cert, key))
        with sync_playwright() as playwright:
            for run in range(args.runs):
                for network in args.network:
                    for protocol in ("HTTP/1.1", "HTTP/2"):
                        for name, served in fronts.items():
                            case = (network, name, protocol)
                            origin = served.h1 if protocol == "HTTP/1.1" else served.h2
                            label = "-".join((*case, str(run))).replace("/", "")
                            profile = WORK / "profiles" / label.replace(" ", "").replace(",", "")
                            shutil.rmtree(profile, ignore_errors=True)
                            measured = measure(
                                playwright, origin, study_uid, args.slices, profile, network
                            )
                            if name == OURS_HTJ2K and measured.htj2k_slices != args.slices:
                                raise SystemExit(f"not every slice came as HTJ2K: {measured}")
                            results.setdefault(case, []).append(measured)
                            print(f"{' '.join(case)} run {run + 1}: {measured}", file=sys.stderr)
    report(results, args, files[0].stat().st_size)


def report(
    results: dict[tuple[str, str, str], list[Run]], args: argparse.Namespace, size: int
) -> None:
    def med(runs: list[Run], attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in runs))

    def seconds(runs: list[Run], kind: str) -> float:
        return float(statistics.median(r.cpu_s[kind] for r in runs))

    loads = [r.load for runs in results.values() for r in runs]
    print(
        f"\n{datetime.date.today()}; {_machine()}; OHIF (npm @ohif/app) from {OHIF_PACKAGE}; "
        f"Orthanc {orthanc_version()} with its DICOMweb plugin; CT {args.slices} x "
        f"{args.size}x{args.size} (P10 files of {size:,} B); medians of {args.runs} runs; "
        f"load average {min(loads):.1f}-{max(loads):.1f} as the runs started.\n"
    )
    print(
        "| Network | Server | Protocol | First image | Whole series "
        "| vs Orthanc (whole series) | each round | pixels on the wire (requests) "
        "| pixel Mbit/s, requests open "
        f"| CPU s: {' / '.join(CPU_KINDS)} "
        "| machine busy | runs (first / whole, s) |"
    )
    print("|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---|")
    for (network, name, protocol), runs in sorted(
        results.items(),
        key=lambda kv: (args.network.index(kv[0][0]), kv[0][2], list(ORDER).index(kv[0][1])),
    ):
        orthanc_runs = results[(network, ORTHANC, protocol)]
        ratio = med(runs, "whole_series_s") / med(orthanc_runs, "whole_series_s")
        rounds = ", ".join(
            f"{r.whole_series_s / o.whole_series_s:.2f}"
            for r, o in zip(runs, orthanc_runs, strict=True)
        )
        each = ", ".join(f"{r.first_image_s:.1f}/{r.whole_series_s:.1f}" for r in runs)
        print(
            f"| {_network(network)} | {name} | {protocol} | {med(runs, 'first_image_s'):.2f} s "
            f"| {med(runs, 'whole_series_s'):.2f} s | {ratio:.2f} | {rounds} "
            f"| {med(runs, 'pixel_mb'):.0f} MB ({med(runs, 'requests'):.0f}) "
            f"| {med(runs, 'pixel_mbit_s'):.0f}, {med(runs, 'mean_open'):.1f} "
            f"| {' / '.join(f'{seconds(runs, kind):.1f}' for kind in CPU_KINDS)} "
            f"| {med(runs, 'machine_busy'):.0%} | {each} |"
        )


def _network(name: str) -> str:
    throttle = NETWORKS[name]
    if throttle is None:
        return name
    latency, down, up = throttle
    return f"{name} ({latency:g} ms, {down / 1e6:g}/{up / 1e6:g} Mbit/s)"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    main()
