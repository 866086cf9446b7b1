"""``dwa viewer install``: fetch the OHIF viewer ``dwa serve --viewer`` serves."""

from __future__ import annotations

from pathlib import Path

import click

from dicomweb_archive.viewer.install import OHIF_PACKAGE, OHIF_VERSION, default_cache, install


@click.group()
def viewer() -> None:
    """The OHIF viewer served by `dwa serve --viewer`."""


@viewer.command("install")
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Folder to unpack it into  [default: {default_cache()}]",
)
@click.option("--version", "version", default=OHIF_VERSION, show_default=True)
def install_command(cache: Path | None, version: str) -> None:
    """Fetch npm's @ohif/app (its built viewer) with `npm pack`; nothing else is installed."""
    dist = install(cache, version)
    click.echo(f"{OHIF_PACKAGE}@{version} is in {dist}", err=True)
    location = "auto" if cache is None else str(cache)
    click.echo(f"serve it with: dwa serve ARCHIVE --viewer {location}", err=True)
