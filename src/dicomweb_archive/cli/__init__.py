"""The ``dwa`` command: a thin shell over the public API (needs the ``cli`` extra)."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from dicomweb_archive.cli.main import cli
    except ImportError as exc:  # click or rich missing
        sys.stderr.write(
            f"dwa needs the command-line extra ({exc.name} is missing): "
            "pip install 'dicomweb-archive[cli]'\n"
        )
        raise SystemExit(1) from None
    cli()
