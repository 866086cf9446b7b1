"""Conversion on a Dask cluster (1 and 2 workers) against single-process ``dwa convert``.

    .venv/bin/python benchmarks/cluster.py [--slices 300] [--repeat 3]

Uses the CT series of ``benchmarks/convert.py`` (generated into ``benchmarks/work/``,
kept between runs).  Starts a ``dask scheduler`` and ``dask worker`` processes on
loopback (one thread each, as ``dwa convert --scheduler`` wants them), outside the
timings, then times each of these ``--repeat`` times into a fresh archive and
reports the median:

* ``dwa convert -w 1`` (one process, one core: the baseline);
* ``dwa convert -w 2`` (one process, a pool of two);
* ``dwa convert --scheduler`` on the cluster with 1 worker, then with 2 workers;
* ``dwa convert --local-cluster 2`` (starting and stopping the cluster included).

Every Dask archive is compared byte for byte with the baseline's.  *Wall s* is
the whole command (start-up, connecting, the import of ``distributed``);
*converter s* is what ``dwa convert --json`` reports (expanding the inputs to the
refreshed study list: the three steps on the cluster, not the connection).
"""

from __future__ import annotations

import argparse
import datetime
import filecmp
import os
import platform
import sys
from pathlib import Path

import convert as bench
from dicomweb_archive import __version__

sys.path.insert(0, str(bench.HERE.parent))
from tests.cluster import DaskCluster


def same_tree(left: Path, right: Path) -> bool:
    """Whether two folders hold the same files with the same bytes."""
    compared = filecmp.dircmp(left, right)
    if compared.left_only or compared.right_only or compared.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, compared.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(same_tree(left / name, right / name) for name in compared.common_dirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--columns", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    source = bench.generate(args.slices, args.rows, args.columns)
    count, size = args.slices, bench.folder_bytes(source)
    baseline, archive = bench.WORK / "cluster-baseline", bench.WORK / "cluster-archive"
    convert = [str(bench.DWA), "convert", str(source), "-q", "--json", "-o"]
    rows: list[tuple[str, float, float]] = []

    def measure(name: str, target: Path, *options: str) -> None:
        wall, out = bench.timed([*convert, str(target), *options], bench.fresh(target), args.repeat)
        rows.append((name, wall, bench.check(out, "converted", count)))
        if target != baseline and not same_tree(target, baseline):
            raise SystemExit(f"{name}: the archive differs from dwa convert -w 1's")

    measure("`dwa convert -w 1` (baseline)", baseline, "-w", "1")
    measure("`dwa convert -w 2` (process pool)", archive, "-w", "2")
    log = bench.WORK / "cluster.log"
    for workers in (1, 2):
        cluster = DaskCluster(workers, log)
        try:
            cluster.client(workers).close()  # up and registered before the timing
            measure(
                f"`--scheduler`, {workers} worker{'s' if workers > 1 else ''}",
                archive,
                "--scheduler",
                cluster.address,
            )
        finally:
            cluster.stop()
    measure("`--local-cluster 2` (cluster start included)", archive, "--local-cluster", "2")

    print(
        f"{count} files, {size / 1e6:.0f} MB ({args.rows}x{args.columns} CT slices); "
        f"{datetime.date.today()}, {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}, "
        f"dicomweb-archive {__version__}; median of {args.repeat}; "
        f"load average before: {os.getloadavg()[0]:.1f}\n"
    )
    print("| Measurement | Wall s | Instances/s | Converter s | Instances/s (converter) |")
    print("|---|---:|---:|---:|---:|")
    for name, wall, inner in rows:
        print(f"| {name} | {wall:.2f} | {count / wall:,.0f} | {inner:.2f} | {count / inner:,.0f} |")
    by_name = {name: (wall, inner) for name, wall, inner in rows}
    one = by_name["`--scheduler`, 1 worker"]
    two = by_name["`--scheduler`, 2 workers"]
    base = by_name["`dwa convert -w 1` (baseline)"]
    print(
        f"\nDask overhead at 1 worker (vs -w 1): wall {one[0] / base[0] - 1:+.0%}, "
        f"converter {one[1] / base[1] - 1:+.0%}; "
        f"2 workers vs 1: wall {one[0] / two[0]:.2f}x, converter {one[1] / two[1]:.2f}x; "
        f"per core (baseline converter): {count / base[1]:,.0f} instances/s, "
        f"{size / 1e6 / base[1]:,.0f} MB/s"
    )


if __name__ == "__main__":
    main()
