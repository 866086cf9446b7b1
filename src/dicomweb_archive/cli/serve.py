"""``dwa serve``."""

from __future__ import annotations

import os
import sys
from typing import Any

import click
import orjson

from dicomweb_archive.cli.options import (
    ArchiveLocation,
    byte_size,
    on_duplicate_option,
    qido_fields_option,
)

#: Connections (and requests in progress) beyond which uvicorn answers 503.
MAX_CONNECTIONS = 1000
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE_TIMEOUT = 5
#: Seconds a worker process (``--workers``) has to start serving, and to answer the
#: supervisor's health check later, before it is killed and replaced.  uvicorn's 5
#: s let a busy machine kill workers still importing the application.
WORKER_HEALTH_TIMEOUT = 60


@click.command()
@click.argument("archive", type=ArchiveLocation())
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    default=8042,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0 for any free port (the one taken is printed).",
)
@click.option("--base-path", default="/dicomweb", show_default=True)
@click.option(
    "--write-token",
    envvar="DWA_WRITE_TOKEN",
    show_envvar=True,
    help="Require 'Authorization: Bearer TOKEN' to store instances (STOW-RS); reads stay "
    "open.  Prefer the environment variable: command lines are visible to other users.",
)
@click.option(
    "--max-upload-size",
    default="2G",
    callback=byte_size,
    show_default=True,
    help="Largest STOW-RS request body (e.g. 512M, 2G); 0 for no limit.",
)
@click.option(
    "--cache-size",
    default="1G",
    callback=byte_size,
    show_default=True,
    help="Bytes the renditions made on request (rendered images, thumbnails, HTJ2K "
    "where none is stored) may keep in ARCHIVE/.dwa/cache.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    default=("*",),
    show_default=True,
    help="An origin allowed to read across origins (repeat for several); '*' for any.",
)
@click.option(
    "--base-url",
    help="Where clients reach the service root (https://host/dicomweb), for the absolute "
    "RetrieveURLs and BulkDataURIs of answers; default: each request's scheme and Host.",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="One JSON line per request on standard error.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, None),
    help="Server processes sharing the port; one uses one core at most.",
)
@click.option(
    "--viewer",
    metavar="PATH|auto",
    default=None,
    help="Serve the OHIF viewer at /viewer from this build (a folder holding its "
    "index.html, or 'auto' for the one `dwa viewer install` fetched).",
)
@qido_fields_option
@click.option(
    "--deidentify-key",
    type=click.Path(exists=True, dir_okay=False),
    help="Key file (see dwa convert --key) for retrieves asking ?deidentify=PROFILE; "
    "without it they are refused.",
)
@on_duplicate_option
def serve(
    archive: str,
    host: str,
    port: int,
    base_path: str,
    write_token: str | None,
    max_upload_size: int,
    cache_size: int,
    cors_origins: tuple[str, ...],
    base_url: str | None,
    access_log: bool,
    workers: int,
    viewer: str | None,
    qido_fields: tuple[str, ...] | None,
    deidentify_key: str | None,
    on_duplicate: str | None,
) -> None:
    """Serve ARCHIVE over DICOMweb (QIDO-RS, WADO-RS, STOW-RS), with a study browser at /.

    An empty or new folder becomes an empty archive, ready for STOW-RS.
    QIDO-RS searches every study (from the SQLite index, a page at a time),
    where a static host of the same folder shows only the newest 1,000 studies
    at /studies (studies/index.json.gz; the full list is studies/pages/).
    """
    try:
        import uvicorn

        from dicomweb_archive.server import listening
        from dicomweb_archive.server.app import OPTIONS_VARIABLE, create_app
        from dicomweb_archive.server.directframes import DirectFramesProtocol
        from dicomweb_archive.server.middleware import enable_access_log
        from dicomweb_archive.store.archive import open_archive
        from dicomweb_archive.store.catalog import Catalog
        from dicomweb_archive.viewer.install import INSTALL_HINT, find_dist
    except ImportError as exc:
        click.echo(
            f"error: dwa serve needs the server extra ({exc.name} is missing): "
            "pip install 'dicomweb-archive[server]'",
            err=True,
        )
        sys.exit(1)
    options: dict[str, Any] = {
        "archive_root": archive,
        "base_path": base_path,
        "write_token": write_token or None,
        "max_upload_bytes": max_upload_size or None,
        "cache_budget": cache_size,
        "cors_origins": cors_origins,
        "base_url": base_url or None,
        "viewer": viewer,
        "deidentify_key": deidentify_key,
        "on_duplicate": on_duplicate,
    }
    if qido_fields is not None:
        _check_qido_fields(archive, qido_fields)
    app = create_app(**options)
    if workers > 1:
        # Built once here, not by every worker at once.
        with open_archive(archive) as opened:
            Catalog(opened).open_index().close()
    try:
        bound = listening.bind(host, port)
    except OSError as exc:
        click.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    origin = listening.origin(bound, host)
    click.echo(f"serving {archive} at {origin}{base_path}", err=True)
    click.echo(f"study browser: {origin}/", err=True)
    if viewer and find_dist(viewer) is None:
        click.echo(f"warning: no OHIF viewer at {viewer!r}: {INSTALL_HINT}", err=True)
    elif viewer:
        click.echo(f"viewer: {origin}/viewer", err=True)
    # Bounds on what one client may hold (server/connection.py adds the head's); the
    # usual frame request answered by the connection (server/directframes.py).
    # Our access log replaces uvicorn's, which lacks sizes and durations.
    settings: dict[str, Any] = {
        "host": host,
        "port": bound.getsockname()[1],
        "log_level": "info",
        "access_log": False,
        "http": DirectFramesProtocol,
        "limit_concurrency": MAX_CONNECTIONS,
        "timeout_keep_alive": KEEP_ALIVE_TIMEOUT,
    }
    if workers == 1:
        if access_log:
            enable_access_log()
        config = uvicorn.Config(app, **settings)
    else:
        # Worker processes import the application: its arguments go by the environment
        # (the write token too, which stays out of the command line).
        os.environ[OPTIONS_VARIABLE] = orjson.dumps({**options, "access_log": access_log}).decode()
        config = uvicorn.Config(
            "dicomweb_archive.server.app:app_from_environment",
            factory=True,
            workers=workers,
            timeout_worker_healthcheck=WORKER_HEALTH_TIMEOUT,
            **settings,
        )
    with bound:
        started = listening.run(config, bound)
    if not started:
        sys.exit(1)


def _check_qido_fields(archive: str, fields: tuple[str, ...]) -> None:
    """A new or empty archive takes ``fields``; one holding studies must have them."""
    from dataclasses import replace

    from dicomweb_archive.store.archive import open_archive
    from dicomweb_archive.store.manifest import ensure, open_or_create, set_qido_fields

    with open_archive(archive) as opened:
        current = open_or_create(opened.store)
        if current.qido_fields == fields:
            return
        if opened.study_uids():
            ensure(opened.store, replace(current, qido_fields=fields))
        set_qido_fields(opened.store, fields)
