"""Correcting PatientName of a 300-instance study in place, against re-converting it.

    .venv/bin/python benchmarks/update.py [--slices 300] [--repeat 3]

Generates a synthetic CT series (``dicomweb_archive.demo.samples``, 512x512)
into ``benchmarks/work/`` (kept between runs), converts it, then measures, each
``--repeat`` times and reporting the median:

* ``re-convert``: converting the study into a fresh archive (one worker), what a
  P10 archive's correction costs: every file written again;
* ``update (folder)``: ``correct()`` of PatientName and PatientID over the
  study (as ``dwa update --study``), alternating two names so each run changes
  every instance;
* ``update (packed)``: the same on the study packed as one ZIP (unpacked, then
  packed again).

Bytes written are counted twice: ``wchar`` of ``/proc/self/io`` (every byte
this process passed to ``write``: staging, temporary files, the SQLite index,
the ZIP), and the size of the archive's files created or changed (by mtime and
inode) outside ``.dwa``.  Everything runs in this process, one worker, page
cache warm, ``sync`` before each timing.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dicomweb_archive import Converter, ConvertOptions, __version__
from dicomweb_archive.demo import samples
from dicomweb_archive.model.corrections import parse_assignment
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.correction import correct
from dicomweb_archive.store.packing import pack_study, unpack_in_place
from dicomweb_archive.store.removal import Target

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"


def generate(slices: int) -> Path:
    """The source series, written again only when its size or generator changed."""
    source = WORK / f"ct-{slices}x512x512"
    stamp = WORK / f"{source.name}.complete"
    generator = hashlib.sha256(Path(samples.__file__).read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text() != generator:
        shutil.rmtree(source, ignore_errors=True)
        samples.write_ct_series(source, slices=slices)
        stamp.write_text(generator)
    return source


def written_by_me() -> int:
    """Bytes this process has passed to ``write`` so far (``wchar``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise SystemExit("no wchar in /proc/self/io")


def files(root: Path) -> dict[str, tuple[int, int, int]]:
    """(mtime, inode, size) of every file of an archive outside ``.dwa``."""
    out = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".dwa"]
        for name in names:
            info = os.stat(os.path.join(folder, name))
            out[os.path.join(folder, name)] = (info.st_mtime_ns, info.st_ino, info.st_size)
    return out


def changed_bytes(before: dict[str, tuple[int, int, int]], root: Path) -> int:
    after = files(root)
    return sum(v[2] for k, v in after.items() if before.get(k) != v)


def measure(
    run: Callable[[], object], root: Path, before: Callable[[], None], repeat: int
) -> tuple[float, int, int]:
    """Median seconds, median wchar bytes and median changed-file bytes of ``run``."""
    times, wchars, changes = [], [], []
    for _ in range(repeat):
        before()
        os.sync()
        state = files(root)
        wrote = written_by_me()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
        wchars.append(written_by_me() - wrote)
        changes.append(changed_bytes(state, root))
    return statistics.median(times), int(statistics.median(wchars)), int(statistics.median(changes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    source = generate(args.slices)
    options = ConvertOptions(workers=1)
    fresh = WORK / "update-reconvert"
    archive_root = WORK / "update-archive"
    shutil.rmtree(archive_root, ignore_errors=True)
    assert Converter(archive_root, options).convert([str(source)]).ok
    archive = open_archive(archive_root)
    Catalog(archive).rebuild_index()  # as a served archive has
    [study] = archive.study_uids()
    names = iter(range(10**6))

    def update() -> None:
        number = next(names)
        corrections = [
            parse_assignment(f"PatientName=Corrected^Name{number % 2}"),
            parse_assignment(f"PatientID=ID-{number % 2}"),
        ]
        done = correct(archive, Target(study), corrections, by="benchmark")
        assert len(done.instances) == args.slices, done

    rows = []
    reconvert = measure(
        lambda: Converter(fresh, options).convert([str(source)]),
        fresh,
        lambda: shutil.rmtree(fresh, ignore_errors=True),
        args.repeat,
    )
    rows.append(("re-convert the study", reconvert))
    rows.append(("update (folder)", measure(update, archive_root, lambda: None, args.repeat)))
    pack_study(archive, study, remove=True)
    rows.append(("update (packed)", measure(update, archive_root, lambda: None, args.repeat)))
    unpack_in_place(archive, study)

    print(
        f"# {datetime.date.today()} dicomweb-archive {__version__}, Python "
        f"{platform.python_version()}, {os.cpu_count()} cores, {args.slices} slices "
        f"512x512, median of {args.repeat}"
    )
    print("| | seconds | bytes written (wchar) | files changed (bytes) | vs re-convert (wchar) |")
    print("|---|---:|---:|---:|---:|")
    for name, (seconds, wchar, changed) in rows:
        ratio = wchar / reconvert[1]
        relative = f"1/{1 / ratio:,.0f}" if ratio < 1 else f"{ratio:.2f}x"
        print(f"| {name} | {seconds:.2f} | {wchar:,} | {changed:,} | {relative} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
