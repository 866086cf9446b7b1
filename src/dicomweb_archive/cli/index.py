"""``dwa index``."""

from __future__ import annotations

import time

import click

from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.manifest import read_options


@click.command()
@click.argument("archive", type=click.Path(exists=True, file_okay=False))
def index(archive: str) -> None:
    """Rebuild the QIDO-RS index of ARCHIVE from its documents.

    The index (``.dwa/index.sqlite``) is derived data: deleting it loses nothing.
    Once it exists, ``dwa convert`` keeps it up to date.
    """
    started = time.perf_counter()
    with open_archive(archive) as store:
        read_options(store)
        count = Catalog(store).rebuild_index()
    click.echo(f"indexed {count} studies in {time.perf_counter() - started:.2f} s -> {archive}")
