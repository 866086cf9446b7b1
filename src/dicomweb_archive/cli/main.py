"""``dwa``: the command group; library errors become one line and their exit code."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import click

from dicomweb_archive.cli.convert import convert
from dicomweb_archive.cli.export import export
from dicomweb_archive.cli.index import index
from dicomweb_archive.cli.pack import pack, unpack
from dicomweb_archive.cli.printable import printable
from dicomweb_archive.cli.serve import serve
from dicomweb_archive.cli.transcode import transcode
from dicomweb_archive.cli.viewer import viewer
from dicomweb_archive.errors import DicomwebArchiveError
from dicomweb_archive.version import __version__


class CommandGroup(click.Group):
    """The one place library errors meet the shell.

    A :class:`~dicomweb_archive.errors.DicomwebArchiveError` that ends a command
    becomes ``error: …`` on standard error and the error's ``exit_code`` (2 for
    invalid input, like click's usage errors).  Failures of single inputs within
    a run are each command's to report; they end it with 1.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DicomwebArchiveError as exc:
            click.echo(f"error: {printable(str(exc))}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dwa")
def cli() -> None:
    """dicomweb-archive: DICOM P10 files in, a DICOMweb archive out."""
    # pydicom reports every oddity it tolerates; we report per input instead.
    warnings.filterwarnings("ignore", module="pydicom")
    logging.getLogger("pydicom").setLevel(logging.ERROR)


cli.add_command(convert)
cli.add_command(export)
cli.add_command(index)
cli.add_command(pack)
cli.add_command(unpack)
cli.add_command(serve)
cli.add_command(transcode)
cli.add_command(viewer)
