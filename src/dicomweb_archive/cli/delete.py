"""``dwa delete``."""

from __future__ import annotations

import click

from dicomweb_archive.cli.options import target_options
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.manifest import read_options
from dicomweb_archive.store.removal import Target
from dicomweb_archive.store.removal import delete as delete_target


@click.command()
@click.argument("archive", type=click.Path(exists=True, file_okay=False))
@target_options("delete")
def delete(archive: str, study: str, series: str | None, instance: str | None) -> None:
    """Delete a study, a series or an instance from ARCHIVE.

    Its files go, with its derived documents, its QIDO-RS rows and bulk data no
    remaining instance refers to; a packed study is packed again.  A deletion
    that was killed is finished by the next ``dwa delete``, ``dwa update``,
    ``dwa convert`` or ``dwa serve``.  Exit status 1 when it is not there.
    """
    if instance is not None and series is None:
        raise click.UsageError("--instance needs --series")
    target = Target(study, series, instance)
    with open_archive(archive) as opened:
        read_options(opened)
        done = delete_target(opened, target)
    gone = " (the study is gone)" if done.study_removed and target.series else ""
    click.echo(
        f"deleted {target}: {len(done.instances)} instances, "
        f"{done.bulk_data} bulk data files{gone} -> {archive}"
    )
