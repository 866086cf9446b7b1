"""``dwa index``."""

from __future__ import annotations

import time

import click

from dicomweb_archive.cli.options import ArchiveLocation
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.manifest import read_options


@click.command()
@click.argument("archive", type=ArchiveLocation(exists=True))
def index(archive: str) -> None:
    """Catch up with deferred writes, then rebuild the QIDO-RS index of ARCHIVE.

    Studies stored by STOW-RS and not flushed yet (a stopped server) get their
    documents and their row in the study list first.  The index
    (``.dwa/index.sqlite``) is derived data: deleting it loses nothing.  Once it
    exists, ``dwa convert`` and the server keep it up to date.
    """
    started = time.perf_counter()
    with open_archive(archive) as store:
        read_options(store)
        catalog = Catalog(store)
        catalog.flush()
        count = catalog.rebuild_index()
    click.echo(f"indexed {count} studies in {time.perf_counter() - started:.2f} s -> {archive}")
