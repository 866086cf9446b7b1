"""``dwa pack`` and ``dwa unpack``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from dicomweb_archive.cli.options import ArchiveLocation, studies_option
from dicomweb_archive.errors import DicomwebArchiveError, ResourceNotFoundError
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.manifest import read_options
from dicomweb_archive.store.packing import (
    check_packable,
    pack_study,
    unpack_in_place,
    unpack_study,
)


def _each(names: list[str], work: Callable[[str], str]) -> None:
    """Run ``work`` per name: one line each, ``failed: …`` lines, exit 0 or 1."""
    failures = 0
    for name in names:
        try:
            click.echo(work(name))
        except (DicomwebArchiveError, OSError) as exc:
            failures += 1
            click.echo(f"failed: {name}: {exc}", err=True)
    sys.exit(1 if failures else 0)


def _studies(store: Archive, studies: tuple[str, ...], every: bool) -> list[str]:
    read_options(store)
    return store.study_uids() if every else list(studies)


@click.command()
@click.argument("archive", type=ArchiveLocation(exists=True))
@studies_option
@click.option("--all", "every", is_flag=True, help="Every study of the archive.")
@click.option("--remove", is_flag=True, help="Remove each study's folder once packed.")
@click.option(
    "-o",
    "--output",
    type=ArchiveLocation(),
    help="Another archive to pack into (created if missing); default: in place.",
)
def pack(
    archive: str, studies: tuple[str, ...], every: bool, remove: bool, output: str | None
) -> None:
    """Pack studies of ARCHIVE into one ZIP each: studies/{UID}.zip.

    In place by default (the folder stays unless --remove); with -o, into
    another archive.  Exit status: 0 when every study was packed, 1 otherwise.
    """
    if not (studies or every) or (studies and every):
        raise click.UsageError("give --study UID (one or more) or --all")
    if remove and output is not None:
        raise click.UsageError("--remove packs in place; it cannot go with -o")
    store = open_archive(archive)
    target = open_archive(output) if output is not None else None
    check_packable(target or store)

    def work(study: str) -> str:
        relative = pack_study(store, study, target, remove=remove)
        where = target or store
        size = where.store.stat(relative).size
        return f"packed {study} -> {where.url.rstrip('/')}/{relative} ({size:,} bytes)"

    _each(_studies(store, studies, every), work)


@click.command()
@click.argument("archive", type=ArchiveLocation())
@click.argument("zips", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@studies_option
@click.option("--all", "every", is_flag=True, help="Every packed study of the archive.")
def unpack(archive: str, zips: tuple[str, ...], studies: tuple[str, ...], every: bool) -> None:
    """Unpack packed studies of ARCHIVE into folders, or study ZIPS into ARCHIVE.

    ZIPS made by `dwa pack` elsewhere join ARCHIVE (created if missing).  Exit
    status: 0 when every study was unpacked, 1 otherwise.
    """
    if not (zips or studies or every) or (studies and every):
        raise click.UsageError("give study ZIP files, --study UID (one or more) or --all")
    store = open_archive(archive)
    names = [str(Path(z)) for z in zips]
    if studies or every:
        selected = _studies(store, studies, every)
        names += [s for s in selected if store.is_packed(s)] if every else selected

    def work(name: str) -> str:
        if name in zips or name.endswith(".zip"):
            study = unpack_study(name, store)
        elif unpack_in_place(store, name):
            study = name
        else:
            raise ResourceNotFoundError("no such packed study in the archive")
        return f"unpacked {study} -> {store.url}"

    _each(names, work)
