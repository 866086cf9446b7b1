"""``dwa index``."""

from __future__ import annotations

import time

import click

from dicomweb_archive.cli.options import ArchiveLocation, qido_fields_option
from dicomweb_archive.model import paths
from dicomweb_archive.store import registry
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.manifest import read_options, set_qido_fields
from dicomweb_archive.store.packing import pack_study, unpack_in_place


@click.command()
@click.argument("archive", type=ArchiveLocation(exists=True))
@qido_fields_option
@click.option(
    "--documents",
    is_flag=True,
    help="Rewrite every study's derived documents from its instances first "
    "(implied when --qido-fields changes the archive's fields).",
)
def index(archive: str, qido_fields: tuple[str, ...] | None, documents: bool) -> None:
    """Catch up with deferred writes, then rebuild the QIDO-RS index of ARCHIVE.

    Studies stored by STOW-RS and not flushed yet (a stopped server) get their
    documents and their row in the study list first.  The study list is then
    written afresh (``studies/index.json.gz``, and the pages of a list of more
    than 1,000 studies renumbered in study order).  The index
    (``.dwa/index-N.sqlite``, N its schema) is derived data: deleting it loses nothing.  Once it
    exists, ``dwa convert`` and the server keep it up to date.  --qido-fields
    sets the attributes the QIDO-RS documents hold beyond the standard's
    (--qido-fields '' removes them) and rewrites every study's documents.
    The registry of SOP Instance UIDs (``.dwa/instances/``, for the duplicates
    policy) is completed from the studies too.
    """
    started = time.perf_counter()
    with open_archive(archive) as store:
        read_options(store)
        if qido_fields is not None and set_qido_fields(store.store, qido_fields):
            documents = True
        catalog = Catalog(store)
        if documents:
            refreshed = refresh_every_study(store, catalog)
            click.echo(f"rewrote the documents of {refreshed} studies", err=True)
        catalog.flush()
        count = catalog.rebuild()
        registry.rebuild(store)
    click.echo(f"indexed {count} studies in {time.perf_counter() - started:.2f} s -> {archive}")


def refresh_every_study(archive: Archive, catalog: Catalog) -> int:
    """Rewrite the derived documents of every study; returns how many.

    A packed study is unpacked, refreshed and packed again (its folder removed
    again when it had none), so its ZIP carries the new documents.
    """
    studies = archive.study_uids()
    packed = {
        study: archive.store.exists(paths.study_dir(study))
        for study in studies
        if archive.is_packed(study)
    }
    for study in packed:
        unpack_in_place(archive, study)
    catalog.refresh(studies)
    for study, had_folder in packed.items():
        pack_study(archive, study, remove=not had_folder)
    return len(studies)
