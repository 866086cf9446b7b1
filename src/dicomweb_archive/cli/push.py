"""``dwa push``."""

from __future__ import annotations

import click
import orjson

from dicomweb_archive.cli.options import ArchiveLocation, json_option, studies_option
from dicomweb_archive.errors import InvalidInputError
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.push import WORKERS
from dicomweb_archive.store.push import push as push_archive


@click.command()
@click.argument("archive", type=ArchiveLocation(exists=True))
@click.argument("target", type=ArchiveLocation())
@studies_option
@click.option(
    "--delete", is_flag=True, help="Remove files of pushed studies that ARCHIVE no longer has."
)
@click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=WORKERS,
    show_default=True,
    help="Files copied at once.",
)
@json_option
def push(
    archive: str, target: str, studies: tuple[str, ...], delete: bool, workers: int, as_json: bool
) -> None:
    """Copy the studies of ARCHIVE into TARGET (s3://bucket/prefix or a folder), incrementally.

    Only files that differ are sent; a killed push is resumed by running it
    again.  Objects get the headers a static host serves (see the README).
    """
    with open_archive(archive) as source, open_archive(target) as into:
        if source.url.rstrip("/") == into.url.rstrip("/"):
            raise InvalidInputError(f"{target}: an archive cannot be pushed into itself")
        result = push_archive(source, into, studies or None, delete=delete, workers=workers)
    if as_json:
        click.echo(orjson.dumps(result.to_json()).decode())
        return
    click.echo(
        f"{len(result.studies)} studies: {result.written} files written "
        f"({result.bytes_written / 1e6:.1f} MB), {result.unchanged} unchanged, "
        f"{result.removed} removed in {result.seconds:.2f} s -> {target}"
    )
