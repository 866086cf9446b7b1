"""The QIDO-RS index's commits synced (``synchronous = FULL``) or not (``NORMAL``).

A refresh of one study (documents and index rows, what the server's flusher
and a read of a stale study do) right after other files were written and not
synced, as a conversion or STOW-RS writes them: with ``FULL`` its commit syncs
the write-ahead log, which on a journaled file system waits for the journal
to commit everything written since its last commit.  Both settings alternate
round after round (each round in the other order) in one process, so both meet
the same load; ``FULL`` is set on the index's connections as builds before
``NORMAL`` did.  Wall and CPU milliseconds of the refresh, medians.

    .venv/bin/python benchmarks/indexsync.py [--repeat 15] [--megabytes 64] [--ext4-image]

``--ext4-image`` puts the archive on a journaled ext4 file system made for the
run (loop image, root), as ``benchmarks/convert.py`` does; otherwise it is in
``benchmarks/work/``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from pydicom.data import get_testdata_file

from convert import WORK, ext4_image, file_system
from dicomweb_archive.convert.converter import Converter
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.store import index
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import QidoIndex

#: The files written before each refresh, in pieces of this size.
PIECE = 512 * 1024


@contextlib.contextmanager
def synchronous(mode: str) -> Iterator[None]:
    """The index's connections opened with ``synchronous = mode``."""
    connect = index._connect

    def connected(path: Path) -> object:
        db = connect(path)
        db.execute(f"PRAGMA synchronous = {mode}")
        return db

    with mock.patch.object(index, "_connect", connected):
        yield


def write_unsynced(folder: Path, megabytes: int) -> None:
    """``megabytes`` in new files of :data:`PIECE`, renamed into place, not synced."""
    folder.mkdir(parents=True)
    piece = os.urandom(PIECE)
    for number in range(megabytes * 1024 * 1024 // PIECE):
        part = folder / f"{number}.part"
        part.write_bytes(piece)
        part.rename(folder / str(number))


def one_refresh(catalog: Catalog, study: str) -> tuple[float, float]:
    """Wall and CPU ms of one refresh of ``study``, marked stale first."""
    catalog.journal.mark_stale(study)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    catalog.settle([study])
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    return wall * 1000, cpu * 1000


def measure(
    root: Path, repeat: int, megabytes: int, served: bool, stack: contextlib.ExitStack
) -> dict[str, list[tuple[float, float]]]:
    """Refreshes after writes, ``FULL`` and ``NORMAL`` in turn (``served``: the
    index held open meanwhile)."""
    archive = root / f"indexsync-{served}"
    shutil.rmtree(archive, ignore_errors=True)
    result = Converter(archive, ConvertOptions(workers=1)).convert(
        [str(get_testdata_file("CT_small.dcm"))]
    )
    assert result.ok
    opened = open_archive(archive)
    catalog = Catalog(opened)
    catalog.rebuild()  # the archive has an index, as after dwa serve
    (study,) = opened.study_uids()
    if served:
        # As dwa serve holds it open: the refreshes' connections are never the
        # last to close, so none copies the log into the database as it closes.
        stack.enter_context(QidoIndex(opened))
    samples: dict[str, list[tuple[float, float]]] = {"FULL": [], "NORMAL": []}
    written = 0
    for round_ in range(repeat):
        modes = list(samples) if round_ % 2 == 0 else list(reversed(samples))
        for mode in modes:
            written += 1
            write_unsynced(root / f"written-{served}-{written}", megabytes)
            with synchronous(mode):
                samples[mode].append(one_refresh(catalog, study))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--megabytes", type=int, default=64, help="written before each refresh")
    parser.add_argument("--ext4-image", action="store_true")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.ext4_image:
            size = 4 * args.repeat * args.megabytes * 1024 * 1024 + 2**30
            root, where = stack.enter_context(ext4_image(size)), "journaled ext4 (loop image)"
        else:
            root, where = WORK / "indexsync-files", file_system(WORK)
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            stack.callback(shutil.rmtree, root, True)
        rows = []
        for served in (True, False):
            samples = measure(root, args.repeat, args.megabytes, served, stack)
            for mode, found in samples.items():
                wall = statistics.median(w for w, _ in found)
                cpu = statistics.median(c for _, c in found)
                held = "held open (dwa serve)" if served else "opened per refresh"
                rows.append(f"| {held} | {mode} | {wall:.1f} | {cpu:.1f} |")
    print(
        f"{where}; {args.megabytes} MB written before each refresh; median of {args.repeat}; "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| index | synchronous | refresh wall ms | refresh CPU ms |")
    print("|---|---|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
