"""The ``dwa`` command: a thin shell over the public API (needs the ``cli`` extra)."""

from __future__ import annotations

import os
import sys


def main() -> None:
    # Work runs in processes (``--workers``), never in numpy's BLAS threads, which
    # would only start and spin beside them: one each, unless asked otherwise.
    for threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(threads, "1")
    try:
        from dicomweb_archive.cli.main import cli
    except ImportError as exc:  # click or rich missing
        sys.stderr.write(
            f"dwa needs the command-line extra ({exc.name} is missing): "
            "pip install 'dicomweb-archive[cli]'\n"
        )
        raise SystemExit(1) from None
    cli()
