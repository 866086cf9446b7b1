"""Parameter checks shared by the commands."""

from __future__ import annotations

import click

from dicomweb_archive import uids


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
