"""Parameter checks shared by the commands."""

from __future__ import annotations

import os
from typing import Any

import click

from dicomweb_archive import uids
from dicomweb_archive.errors import InvalidInputError
from dicomweb_archive.model.attributes import attribute_tag
from dicomweb_archive.store.url import is_url


class ArchiveLocation(click.ParamType[str]):
    """An archive: a folder (that must exist when ``exists``) or a store URL (``s3://…``).

    A URL is left to :func:`~dicomweb_archive.store.url.open_store`, which opens
    it or refuses it by name; it is never checked as a local path.
    """

    name = "archive"

    def __init__(self, *, exists: bool = False) -> None:
        self._folder = click.Path(exists=exists, file_okay=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if is_url(os.fspath(value)):
            return os.fspath(value)
        return self._folder.convert(value, param, ctx)


def check_uids(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """Refuse anything but DICOM UIDs: a usage error (exit 2) before any work starts."""
    for value in values:
        if not uids.is_valid_uid(value):
            raise click.BadParameter(f"{value!r} is not a valid UID")
    return values


#: ``--study UID`` (repeatable), into ``studies``.
studies_option = click.option(
    "--study",
    "studies",
    multiple=True,
    metavar="UID",
    callback=check_uids,
    help="A study (repeatable).",
)
#: ``--series UID`` (repeatable), into ``series``.
series_option = click.option(
    "--series",
    "series",
    multiple=True,
    metavar="UID",
    callback=check_uids,
    help="A series (repeatable).",
)
#: ``-w/--workers N``, into ``workers`` (None: all cores).
workers_option = click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: all cores).",
)
#: ``--json``, into ``as_json``.
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON summary on stdout."
)
#: ``-q/--quiet``, into ``quiet``.
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar.")


def parse_qido_fields(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...] | None:
    """``--qido-fields`` (repeatable, comma-separated keywords or tags) as sorted 8-hex
    tags; None when not given, () for an explicitly empty list."""
    if not values:
        return None
    found = set()
    for value in values:
        for name in filter(None, (part.strip() for part in value.split(","))):
            try:
                found.add(attribute_tag(name)[0])
            except InvalidInputError as exc:
                raise click.BadParameter(str(exc)) from None
    return tuple(sorted(found))


#: ``--qido-fields KEYWORD|TAG,…`` (repeatable), into ``qido_fields``.
qido_fields_option = click.option(
    "--qido-fields",
    "qido_fields",
    multiple=True,
    metavar="ATTR,…",
    callback=parse_qido_fields,
    help="Attributes (keywords or 8-hex tags, comma-separated) added to the QIDO-RS "
    "documents and index at every level; recorded in the archive's manifest.",
)
