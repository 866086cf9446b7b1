"""``dwa export``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from dicomweb_archive.cli.options import (
    ArchiveLocation,
    dataset_options,
    dataset_transforms,
    series_option,
    studies_option,
)
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.export.bundle import ExportFile, find_series, write_folder, write_zip
from dicomweb_archive.rewrite.transformed import rewriter
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
@dataset_options()
def export(
    archive: str,
    studies: tuple[str, ...],
    series: tuple[str, ...],
    output: Path,
    **dataset: Any,
) -> None:
    """Regenerate the P10 files of ARCHIVE (every study unless --study/--series).

    Files are named {PatientID}_{StudyDate}_{StudyDescription}/{SeriesNumber}_
    {Modality}_{SeriesDescription}/{InstanceNumber}.dcm.  With --deidentify
    (or the other dataset options) each file is transformed as by dwa convert and
    named from what it became.  Exit status: 0 when every instance was written,
    1 otherwise (one line per failure).
    """
    chosen = dataset_transforms(**dataset)
    rewrite = rewriter(ConvertOptions(**chosen)) if any(chosen.values()) else None
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
        count = write_zip(store, selection, output, failed, rewrite)
    else:
        count = len(write_folder(store, selection, output, failed, rewrite))
    click.echo(f"exported {count} instances, {failures} failed -> {output}")
    sys.exit(1 if failures else 0)
