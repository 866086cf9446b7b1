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
