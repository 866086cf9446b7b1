"""Fixtures that run the real OHIF viewer in headless Chromium against an archive.

Everything is real and local: the viewer is the built ``dist/`` of npm's
``@ohif/app`` (``make ohif`` unpacks it to ``.cache/ohif/``), served by nginx
with a single-page-application fallback and a generated ``app-config.js``; the
DICOMweb side is either a live ``dwa serve`` or the archive hosted statically
by nginx with ``deploy/nginx.conf``.  Each runs on its own loopback port, so the
viewer always talks to the archive cross-origin and CORS is exercised for real.

Chromium is Debian's ``chromium`` package, driven by Playwright with
``executable_path``; Playwright's own browser downloads are never used.  A
missing browser or viewer fails the tests (never skips them), pointing at
``make test``, which installs both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from playwright.sync_api import BrowserContext, Playwright, sync_playwright

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.demo.samples import write_ct_series
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.push import push
from dicomweb_archive.transcode.transcoder import TranscodeOptions, Transcoder
from dicomweb_archive.viewer.config import PROGRESSIVE_URL
from dicomweb_archive.viewer.config import app_config as viewer_app_config
from dicomweb_archive.viewer.install import OHIF_VERSION
from tests.integration.conftest import (
    DEPLOY_CONF,
    TEMP_PATHS,
    _quoted,
    render_conf,
    run_nginx,
)
from tests.objectstore import MotoServer
from tests.server import live

REPO = Path(__file__).resolve().parents[2]
OHIF_PACKAGE = REPO / ".cache" / "ohif" / "package"
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",  # runs as root in CI
    "--disable-gpu",
    # WebGL (Cornerstone3D renders with it) on the CPU: ANGLE over SwiftShader.
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

#: The generated study: small enough to convert and load in seconds.
SLICES = 40
ROWS = COLUMNS = 256
PATIENT_NAME = "Browser^Ohif"
PATIENT_ID = "DWA-BROWSER-1"

#: OHIF's data source settings for ``dwa serve`` (qidoRoot/wadoRoot are added).
DWA_SERVE_SOURCE: dict[str, object] = {
    "imageRendering": "wadors",
    "thumbnailRendering": "wadors",
    "enableStudyLazyLoad": True,
    "supportsWildcard": True,
    "supportsFuzzyMatching": False,
    "bulkDataURI": {"enabled": True},
}
#: The progressive-loading recipe of deploy/README.md: the extension module,
#: served on the viewer's origin at this URL, switched on by the data source,
#: and series thumbnails as the small JPEG ``dwa serve`` renders
#: (``…/series/{se}/thumbnail``) instead of a whole native frame.
PROGRESSIVE_EXTENSION = REPO / "src" / "dicomweb_archive" / "viewer" / "ohif-progressive.mjs"
PROGRESSIVE_EXTENSION_URL = PROGRESSIVE_URL
PROGRESSIVE_SOURCE: dict[str, object] = {
    **DWA_SERVE_SOURCE,
    "thumbnailRendering": "thumbnail",
    "progressiveLoading": True,
}

_RUN_MAKE = "Run `make test` (it installs everything the browser tests need)"


@dataclass(frozen=True)
class Study:
    """The CT study every browser test opens, and the archive holding it."""

    archive: Path
    study_uid: str
    patient_name: str
    patient_id: str
    description: str
    study_date: str  # as OHIF's study list shows it, e.g. 15-Mar-2024
    slices: int


@dataclass(frozen=True)
class Viewer:
    """The OHIF viewer served at ``origin``, configured for one data source."""

    origin: str
    dicomweb: str  # the data source's qidoRoot and wadoRoot
    config: dict[str, object]


@pytest.fixture(scope="session")
def ohif_dist() -> Path:
    """The built viewer of the @ohif/app version dicomweb_archive.viewer pins."""
    wanted = OHIF_VERSION
    manifest = OHIF_PACKAGE / "package.json"
    dist = OHIF_PACKAGE / "dist"
    if not manifest.is_file() or not (dist / "index.html").is_file():
        pytest.fail(
            f"the OHIF viewer (npm @ohif/app {wanted}) is not in {OHIF_PACKAGE}. "
            f"{_RUN_MAKE}, or `make ohif`.",
            pytrace=False,
        )
    found = json.loads(manifest.read_text())["version"]
    if found != wanted:
        pytest.fail(
            f"{OHIF_PACKAGE} holds @ohif/app {found}, dicomweb_archive.viewer pins {wanted}. "
            f"{_RUN_MAKE}, or `make ohif`.",
            pytrace=False,
        )
    return dist


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is not installed ({CHROMIUM}), so the OHIF viewer cannot be tested. "
            f"{_RUN_MAKE}; or run `apt-get install chromium`.",
            pytrace=False,
        )
    return CHROMIUM


_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _ohif_date(da: str) -> str:
    """A DICOM date as OHIF's study list shows it: 20240315 -> 15-Mar-2024."""
    return f"{da[6:8]}-{_MONTHS[int(da[4:6]) - 1]}-{da[:4]}"


@pytest.fixture(scope="session")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """A CT series written by the project's sample generator, converted to an archive."""
    base = tmp_path_factory.mktemp("browser-study")
    files = write_ct_series(
        base / "p10",
        slices=SLICES,
        rows=ROWS,
        columns=COLUMNS,
        patient_name=PATIENT_NAME,
        patient_id=PATIENT_ID,
    )
    archive = base / "archive"
    result = Converter(archive, ConvertOptions(workers=1)).convert([str(f) for f in files])
    assert result.ok, result.to_json()
    assert result.counts["converted"] == SLICES, result.to_json()
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    return Study(
        archive=archive,
        study_uid=str(first.StudyInstanceUID),
        patient_name=str(first.PatientName),
        patient_id=str(first.PatientID),
        description=str(first.StudyDescription),
        study_date=_ohif_date(str(first.StudyDate)),
        slices=SLICES,
    )


@contextlib.contextmanager
def _nginx(prefix: Path, conf: Callable[[int], str]) -> Iterator[str]:
    """nginx in the foreground with ``conf(port)``; yields its origin."""
    with run_nginx(prefix, conf) as port:
        yield f"http://127.0.0.1:{port}"


def _nginx_paths(prefix: Path) -> dict[str, str | None]:
    """The process directives that keep nginx inside ``prefix`` (no root rights needed)."""
    return {
        # As root the workers would otherwise run as nobody, who cannot read
        # pytest's private (0700) temporary folders.
        "user": "root" if os.geteuid() == 0 else None,
        "pid": _quoted(prefix / "nginx.pid"),
        "error_log": f"{_quoted(prefix / 'logs' / 'error.log')} info",
        "access_log": _quoted(prefix / "logs" / "access.log"),
        **{f"{name}_temp_path": _quoted(prefix / "temp" / name) for name in TEMP_PATHS},
    }


VIEWER_CONF = """\
user root;
worker_processes 1;
pid /dev/null;
error_log /dev/null;

events {{
    worker_connections 512;
}}

http {{
    access_log off;
    client_body_temp_path /tmp;
    proxy_temp_path /tmp;
    fastcgi_temp_path /tmp;
    uwsgi_temp_path /tmp;
    scgi_temp_path /tmp;

    sendfile on;
    server_tokens off;
    types {{
        text/html html;
        application/javascript js mjs;
        text/css css;
        application/wasm wasm;
        application/json json map;
        application/manifest+json webmanifest;
        image/svg+xml svg;
        image/png png;
        image/x-icon ico;
        font/woff2 woff2;
        text/plain txt;
    }}
    default_type application/octet-stream;

    server {{
        listen 127.0.0.1:{port};
        root {dist};

        # What OHIF's deployment guide asks for: cross-origin isolation, so the
        # viewer may use SharedArrayBuffer.  It also makes the browser insist on
        # CORS (or CORP) for everything the viewer loads from the archive.
        add_header Cross-Origin-Opener-Policy "same-origin" always;
        add_header Cross-Origin-Embedder-Policy "require-corp" always;

        # The data source configuration written by the test.
        location = /app-config.js {{
            alias {config};
        }}
{extra_locations}        # Single-page application: every route (/, /viewer, ...) is index.html.
        location / {{
            try_files $uri /index.html;
        }}
    }}
}}
"""


def viewer_conf(
    prefix: Path, port: int, dist: Path, config: Path, files: Mapping[str, Path] | None = None
) -> str:
    """The viewer's nginx configuration; ``files`` maps more URL paths to files."""
    extra = "".join(
        f"        location = {url} {{\n            alias {_quoted(path)};\n        }}\n"
        for url, path in (files or {}).items()
    )
    text = VIEWER_CONF.format(
        port=port, dist=_quoted(dist), config=_quoted(config), extra_locations=extra
    )
    return render_conf(text, _nginx_paths(prefix))


def app_config(data_source: dict[str, object], extensions: Sequence[str] = ()) -> dict[str, object]:
    """The configuration ``dwa serve --viewer`` makes, with ``data_source``; no
    more decoding workers than the test machine's cores."""
    return {**viewer_app_config(data_source, extensions), "maxNumberOfWebWorkers": 2}


@contextlib.contextmanager
def serve_viewer(
    prefix: Path,
    dist: Path,
    dicomweb: str,
    data_source: dict[str, object],
    extensions: Mapping[str, Path] | None = None,
) -> Iterator[Viewer]:
    """The OHIF viewer on its own nginx, pointed at the DICOMweb root ``dicomweb``.

    ``extensions`` maps URL paths on the viewer's origin to extension modules
    served there and listed in the configuration, as a deployment would.
    """
    prefix.mkdir(parents=True, exist_ok=True)
    config = app_config(
        {"qidoRoot": dicomweb, "wadoRoot": dicomweb, **data_source}, list(extensions or {})
    )
    config_file = prefix / "app-config.js"
    config_file.write_text(f"window.config = {json.dumps(config, indent=2)};\n")
    with _nginx(
        prefix, lambda port: viewer_conf(prefix, port, dist, config_file, extensions)
    ) as origin:
        yield Viewer(origin=origin, dicomweb=dicomweb, config=config)


@contextlib.contextmanager
def run_dwa_serve(archive: Path, folder: Path, options: Sequence[str] = ()) -> Iterator[str]:
    """A live ``dwa serve ARCHIVE OPTIONS…`` (log in ``folder``); yields its DICOMweb root."""
    with (
        open(folder / "serve.log", "ab") as log,
        live.dwa_serve(
            archive,
            "--host",
            "127.0.0.1",
            *options,
            access_log=True,
            log=log,
            stdin=subprocess.DEVNULL,
            stdout=log,
        ) as (root, _),
    ):
        yield root


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, valid for a day (``openssl``)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture(scope="session")
def dwa_serve(tmp_path_factory: pytest.TempPathFactory, study: Study) -> Iterator[str]:
    """A live ``dwa serve`` over the study's archive; yields its DICOMweb root."""
    with run_dwa_serve(study.archive, tmp_path_factory.mktemp("dwa-serve")) as root:
        yield root


@pytest.fixture(scope="session")
def transcoded_study(tmp_path_factory: pytest.TempPathFactory, study: Study) -> Study:
    """The same study in a second archive with HTJ2K alternates (``dwa transcode``)."""
    archive = tmp_path_factory.mktemp("browser-htj2k") / "archive"
    shutil.copytree(study.archive, archive)
    result = Transcoder(archive, TranscodeOptions(workers=1)).transcode()
    assert result.ok, result
    return dataclasses.replace(study, archive=archive)


@pytest.fixture(scope="session")
def dwa_serve_htj2k(
    tmp_path_factory: pytest.TempPathFactory, transcoded_study: Study
) -> Iterator[str]:
    """A live ``dwa serve`` over the transcoded archive; yields its DICOMweb root."""
    folder = tmp_path_factory.mktemp("dwa-serve-htj2k")
    with run_dwa_serve(transcoded_study.archive, folder) as root:
        yield root


@pytest.fixture(scope="session")
def static_archive(tmp_path_factory: pytest.TempPathFactory, study: Study) -> Iterator[str]:
    """The study's archive hosted by nginx with ``deploy/nginx.conf``; yields its DICOMweb root."""
    prefix = tmp_path_factory.mktemp("archive-nginx")
    template = DEPLOY_CONF.read_text()

    def conf(port: int) -> str:
        values = {
            **_nginx_paths(prefix),
            "listen": f"127.0.0.1:{port}",
            "root": _quoted(study.archive),
        }
        return render_conf(template, values)

    with _nginx(prefix, conf) as origin:
        yield f"{origin}/dicomweb"


S3_CONF = REPO / "deploy" / "nginx-s3.conf"


@pytest.fixture(scope="session")
def s3_static_archive(
    tmp_path_factory: pytest.TempPathFactory, study: Study, s3_server: MotoServer
) -> Iterator[str]:
    """The study pushed into a bucket of a real S3 API (moto), fronted by nginx with
    ``deploy/nginx-s3.conf``; yields its DICOMweb root.  Every header comes from the
    objects themselves."""
    bucket = s3_server.bucket("ohif")
    with open_archive(study.archive) as source, open_archive(f"s3://{bucket}/archive") as into:
        assert push(source, into).written > 0
    s3_server.publish(bucket, "archive")
    prefix = tmp_path_factory.mktemp("s3-nginx")
    endpoint = s3_server.endpoint.removeprefix("http://")
    template = S3_CONF.read_text()
    host_line = "proxy_set_header Host 127.0.0.1:9000;"
    assert template.count(host_line) == 1
    template = template.replace(host_line, f"proxy_set_header Host {endpoint};")

    def conf(port: int) -> str:
        values = {
            **_nginx_paths(prefix),
            "listen": f"127.0.0.1:{port}",
            "server": endpoint,
            "set": f'$archive "/{bucket}/archive"',
        }
        return render_conf(template, values)

    with _nginx(prefix, conf) as origin:
        yield f"{origin}/dicomweb"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Module scope, not session: while the sync driver is open, an asyncio loop
    # counts as running in this thread, and tests run later that start their own
    # loop (anyio.run, asyncio.run) would fail with "Already running asyncio".
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(playwright: Playwright, chromium: Path, tmp_path: Path) -> Iterator[BrowserContext]:
    """Chromium with a fresh profile, closed after the test."""
    context = playwright.chromium.launch_persistent_context(
        tmp_path / "chromium-profile",
        executable_path=str(chromium),
        headless=True,
        args=list(CHROMIUM_ARGS),
        viewport={"width": 1280, "height": 900},
        timeout=30_000,
    )
    context.set_default_timeout(30_000)
    context.set_default_navigation_timeout(30_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
