"""``dwa serve``."""

from __future__ import annotations

import sys

import click

from dicomweb_archive.errors import DicomwebArchiveError


@click.command()
@click.argument("archive", type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8042, show_default=True, type=click.IntRange(1, 65535))
@click.option("--base-path", default="/dicomweb", show_default=True)
def serve(archive: str, host: str, port: int, base_path: str) -> None:
    """Serve ARCHIVE over DICOMweb (QIDO-RS, WADO-RS metadata, frames, bulk data)."""
    try:
        import uvicorn

        from dicomweb_archive.server.app import create_app
    except ImportError as exc:
        click.echo(
            f"error: dwa serve needs the server extra ({exc.name} is missing): "
            "pip install 'dicomweb-archive[server]'",
            err=True,
        )
        sys.exit(1)
    try:
        app = create_app(archive, base_path=base_path)
    except DicomwebArchiveError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"serving {archive} at http://{host}:{port}{base_path}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
