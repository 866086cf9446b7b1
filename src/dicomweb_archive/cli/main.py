"""``dwa``: the command group; library errors become one line and an exit code."""

from __future__ import annotations

import logging
import warnings

import click

from dicomweb_archive.cli.convert import convert
from dicomweb_archive.cli.export import export
from dicomweb_archive.cli.index import index
from dicomweb_archive.cli.pack import pack, unpack
from dicomweb_archive.cli.serve import serve
from dicomweb_archive.cli.transcode import transcode
from dicomweb_archive.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
