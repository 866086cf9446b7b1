"""``dwa attach``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import click

from dicomweb_archive.cli.options import ArchiveLocation, check_uids
from dicomweb_archive.model.paths import ResourcePath, ResourceType
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.extensions import attach as attach_files
from dicomweb_archive.store.manifest import read_options


def _one_uid(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else check_uids(ctx, param, (value,))[0]


@click.command()
@click.argument("archive", type=ArchiveLocation(exists=True))
@click.option("--study", required=True, metavar="UID", callback=_one_uid, help="The study.")
@click.option("--series", metavar="UID", callback=_one_uid, help="A series of the study.")
@click.option("--instance", metavar="UID", callback=_one_uid, help="An instance of the series.")
@click.argument("name")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def attach(
    archive: str,
    study: str,
    series: str | None,
    instance: str | None,
    name: str,
    files: tuple[Path, ...],
) -> None:
    """Put FILES into the extension folder NAME (_{vendor}_{name}) of a study,
    series or instance of ARCHIVE, under their own names.

    Served at …/{level}/NAME/{file}; listed in /studies/{UID}/extensions.
    """
    if instance is not None and series is None:
        raise click.UsageError("--instance needs --series")
    level = (
        ResourceType.INSTANCE if instance else ResourceType.SERIES if series else ResourceType.STUDY
    )
    where = ResourcePath(level, study, series, instance)
    with open_archive(archive) as store, contextlib.ExitStack() as opened:
        read_options(store)
        sources = [
            (os.path.basename(path), opened.enter_context(path.open("rb"))) for path in files
        ]
        attached = attach_files(store, where, name, sources)
    for file in attached:
        state = "added" if file.created else "replaced" if file.changed else "unchanged"
        click.echo(f"{state}: {file.path} ({file.size:,} bytes, {file.content_type})")
