"""``dwa deidentify``: a de-identified copy of an archive."""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any

import click

from dicomweb_archive.cli.console import plain_console
from dicomweb_archive.cli.convert import report, run_converter
from dicomweb_archive.cli.options import (
    ArchiveLocation,
    dataset_options,
    dataset_transforms,
    json_option,
    quiet_option,
    studies_option,
    workers_option,
)
from dicomweb_archive.convert.converter import Converter
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.deidentify.profile import BASIC
from dicomweb_archive.rewrite.archived import copy_archive
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.manifest import read_options


@click.command()
@click.argument("source", type=ArchiveLocation(exists=True))
@click.option(
    "-o",
    "--output",
    "archive",
    required=True,
    type=ArchiveLocation(),
    help="The de-identified archive (created if missing; converting into it again is idempotent).",
)
@studies_option
@dataset_options(profile=BASIC)
@workers_option
@json_option
@quiet_option
def deidentify(
    source: str,
    archive: str,
    studies: tuple[str, ...],
    workers: int | None,
    as_json: bool,
    quiet: bool,
    **dataset: Any,
) -> None:
    """Store a de-identified copy of the instances of SOURCE (every study unless --study).

    Each instance is regenerated from SOURCE and stored in OUTPUT as by
    ``dwa convert --deidentify`` (same key, same pseudonyms), with SOURCE's
    storage options.  Exit status: 0 when every instance was stored, 1 when
    some failed (one line each), 2 on a usage error.
    """
    if os.path.realpath(source) == os.path.realpath(archive):
        raise click.UsageError("the de-identified copy needs another folder than SOURCE")
    transforms = dataset_transforms(**dataset)  # usage errors before the archive is read
    with open_archive(source) as opened:
        stored = read_options(opened.store)
    options = dataclasses.replace(ConvertOptions.for_archive(stored, workers=workers), **transforms)
    err = plain_console(stderr=True)
    result, _ = run_converter(
        lambda on_total, on_outcome: copy_archive(
            source, Converter(archive, options), studies, on_total=on_total, on_outcome=on_outcome
        ),
        err,
        show_progress=not quiet and err.is_terminal,
    )
    report(result, archive, err, as_json=as_json)
    sys.exit(0 if result.ok else 1)
