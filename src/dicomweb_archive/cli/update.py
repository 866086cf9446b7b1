"""``dwa update``."""

from __future__ import annotations

import getpass

import click

from dicomweb_archive.cli.options import target_options
from dicomweb_archive.errors import InvalidInputError
from dicomweb_archive.model.corrections import Correction, parse_assignment
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.correction import correct
from dicomweb_archive.store.manifest import read_options
from dicomweb_archive.store.removal import Target


def _corrections(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[Correction]:
    try:
        return [parse_assignment(value) for value in values]
    except InvalidInputError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.argument("archive", type=click.Path(exists=True, file_okay=False))
@target_options("update")
@click.option(
    "--set",
    "corrections",
    multiple=True,
    required=True,
    metavar="KEYWORD=VALUE",
    callback=_corrections,
    help="A patient, study or series attribute's new value (repeatable): "
    "PatientName=Doe^John, PatientID=123; empty for no value.",
)
@click.option(
    "--by",
    default=None,
    help="Who makes the change, as recorded in each instance's info (default: the user).",
)
def update(
    archive: str,
    study: str,
    series: str | None,
    instance: str | None,
    corrections: list[Correction],
    by: str | None,
) -> None:
    """Correct patient, study or series attributes of a study, a series or an instance.

    Only the instances' metadata documents and the study's derived documents
    are rewritten: frames and bulk data stay as they are, and exported P10
    files carry the new values.  Each instance's info.json.gz records the
    change (when, by whom, old and new values).  A packed study is packed
    again.  A run killed midway is finished by the next ``dwa update``,
    ``dwa delete``, ``dwa convert`` or ``dwa serve``.
    """
    if instance is not None and series is None:
        raise click.UsageError("--instance needs --series")
    target = Target(study, series, instance)
    with open_archive(archive) as opened:
        read_options(opened)
        done = correct(opened, target, corrections, by=by or getpass.getuser())
    names = ", ".join(c.keyword for c in corrections)
    click.echo(
        f"updated {names} of {target}: {len(done.instances)} instances changed, "
        f"{done.unchanged} unchanged -> {archive}"
    )
