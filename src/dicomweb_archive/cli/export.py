"""``dwa export``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dicomweb_archive.cli.options import ArchiveLocation, series_option, studies_option
from dicomweb_archive.export.bundle import ExportFile, find_series, write_folder, write_zip
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.manifest import read_options


@click.command()
@click.argument("archive", type=ArchiveLocation(exists=True))
@studies_option
@series_option
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for the P10 files, or a file name ending in .zip for one ZIP.",
)
def export(archive: str, studies: tuple[str, ...], series: tuple[str, ...], output: Path) -> None:
    """Regenerate the P10 files of ARCHIVE (every study unless --study/--series).

    Files are named {PatientID}_{StudyDate}_{StudyDescription}/{SeriesNumber}_
    {Modality}_{SeriesDescription}/{InstanceNumber}.dcm.  Exit status: 0 when
    every instance was written, 1 otherwise (one line per failure).
    """
    store = open_archive(archive)
    failures = 0

    def failed(planned: ExportFile, exc: Exception) -> None:
        nonlocal failures
        failures += 1
        click.echo(f"failed: {planned.sop_instance_uid}: {exc}", err=True)

    read_options(store)
    selection: list[tuple[str, str | None]] = [(s, None) for s in studies]
    selection += [(find_series(store, s), s) for s in series]
    if not selection:
        selection = [(s, None) for s in store.study_uids()]
    if output.suffix.lower() == ".zip":
        count = write_zip(store, selection, output, failed)
    else:
        count = len(write_folder(store, selection, output, failed))
    click.echo(f"exported {count} instances, {failures} failed -> {output}")
    sys.exit(1 if failures else 0)
