"""``dwa``: the command group; library errors become one line and their exit code."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

from dicomweb_archive.cli.printable import printable
from dicomweb_archive.errors import DicomwebArchiveError
from dicomweb_archive.p10 import quiet_pydicom
from dicomweb_archive.version import __version__

#: Each command and the module defining it, imported only when the command runs:
#: ``dwa --version`` and ``dwa convert`` need neither the server nor each other.
COMMANDS = {
    "attach": "attach",
    "convert": "convert",
    "deidentify": "deidentify",
    "delete": "delete",
    "export": "export",
    "index": "index",
    "listen": "listen",
    "pack": "pack",
    "push": "push",
    "unpack": "pack",
    "serve": "serve",
    "transcode": "transcode",
    "update": "update",
    "viewer": "viewer",
}


class CommandGroup(click.Group):
    """The one place library errors meet the shell; commands load on first use.

    A :class:`~dicomweb_archive.errors.DicomwebArchiveError` that ends a command
    becomes ``error: …`` on standard error and the error's ``exit_code`` (2 for
    invalid input, like click's usage errors).  Failures of single inputs within
    a run are each command's to report; they end it with 1.
    """

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        #: Commands by name, each loaded from its ``dicomweb_archive.cli`` module.
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self.lazy.get(cmd_name)
        if module is None:
            return super().get_command(ctx, cmd_name)
        command: click.Command = getattr(
            importlib.import_module(f"dicomweb_archive.cli.{module}"), cmd_name
        )
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DicomwebArchiveError as exc:
            click.echo(f"error: {printable(str(exc))}", err=True)
            ctx.exit(exc.exit_code)


@click.group(
    cls=CommandGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="dwa")
def cli() -> None:
    """dicomweb-archive: DICOM P10 files in, a DICOMweb archive out."""
    quiet_pydicom()
