"""``dwa serve``."""

from __future__ import annotations

import logging
import sys

import click

from dicomweb_archive.errors import DicomwebArchiveError

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _byte_size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """A size in bytes: ``1048576``, ``512M``, ``2G`` (binary units)."""
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1:] if text[-1:] in _UNITS else ""
    try:
        size = float(text[: len(text) - len(unit)].strip()) * _UNITS[unit]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a size such as 2G, 512M or 1048576") from None
    if size < 0:
        raise click.BadParameter(f"{value!r} is negative")
    return int(size)


@click.command()
@click.argument("archive", type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8042, show_default=True, type=click.IntRange(1, 65535))
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
    callback=_byte_size,
    show_default=True,
    help="Largest STOW-RS request body (e.g. 512M, 2G); 0 for no limit.",
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
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="One JSON line per request on standard error.",
)
def serve(
    archive: str,
    host: str,
    port: int,
    base_path: str,
    write_token: str | None,
    max_upload_size: int,
    cors_origins: tuple[str, ...],
    access_log: bool,
) -> None:
    """Serve ARCHIVE over DICOMweb (QIDO-RS, WADO-RS, STOW-RS)."""
    try:
        import uvicorn

        from dicomweb_archive.server.app import create_app
        from dicomweb_archive.server.middleware import ACCESS_LOGGER
    except ImportError as exc:
        click.echo(
            f"error: dwa serve needs the server extra ({exc.name} is missing): "
            "pip install 'dicomweb-archive[server]'",
            err=True,
        )
        sys.exit(1)
    try:
        app = create_app(
            archive,
            base_path=base_path,
            write_token=write_token or None,
            max_upload_bytes=max_upload_size or None,
            cors_origins=cors_origins,
        )
    except DicomwebArchiveError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"serving {archive} at http://{host}:{port}{base_path}", err=True)
    if access_log:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger(ACCESS_LOGGER)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    # Our access log replaces uvicorn's, which lacks sizes and durations.
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
