"""Growth curves: the cost of one more write as studies and the archive grow.

Every point is measured in the same run, on generated tiny instances (8x8 CT
images, Explicit VR Little Endian), in-process (the server through Starlette's
TestClient, the converter through :class:`Converter`), so start-up is excluded:

* STOW-RS latency (p50/p99) of one more instance into a study of 10, 100, 1,000
  (and 5,000 with ``--large``) instances;
* STOW-RS latency of one more one-instance study into an archive of 10, 1,000,
  10,000 (and 100,000 with ``--large``) studies;
* ``dwa convert`` per-instance cost (a batch of new one-instance studies) at the
  same archive sizes;
* QIDO-RS p50 at the same archive sizes: PatientName wildcard, StudyDate range,
  both with ``limit=100``;
* ``--only listing``: one flush after one new study (documents, index rows,
  study list) at 1,000, 10,000 and 100,000 listed studies: CPU and peak memory;
  and STOW-RS p50/p99 of one new study into the same archives.

The archives grow by bulk conversion between points (not measured).
``--only refresh``: CPU ms of one study's refresh after one new instance at
study sizes 10, 100, 1,000 and 5,000 (run it with each build's ``PYTHONPATH``
in turn to compare builds on the same archives).  ``--only rebuild``: ``dwa
index``'s rebuild of the QIDO-RS index, instances per CPU and wall second.

    .venv/bin/python benchmarks/scale.py [--large] [--repeat 20] [--batch 100]
    .venv/bin/python benchmarks/scale.py --only http   # QIDO-RS through dwa serve
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import io
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from starlette.testclient import TestClient

from dicomweb_archive import tags
from dicomweb_archive.convert.converter import Converter
from dicomweb_archive.convert.instance import store_instance
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.model.aggregate import StudyDocuments, study_documents
from dicomweb_archive.p10.reader import read_instance
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import BATCH_ROWS, INDEX_PATH, Level, QidoIndex, Query
from dicomweb_archive.store.indexrows import FreshRows
from dicomweb_archive.store.journal import Journal
from dicomweb_archive.types import JSONDataset

WORK = Path(__file__).parent / "work" / "scale"
ROOT = "1.2.826.0.1.3680043.10.1163.7"
CT = "1.2.840.10008.5.1.4.1.1.2"
BOUNDARY = "scale-bench"
MULTIPART = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
PIXELS = np.arange(64, dtype=np.uint16).reshape(8, 8).tobytes()


def instance_values(study: int, series: int, number: int) -> dict[str, str]:
    """The UIDs, names, IDs and date of instance ``number`` of ``series`` of ``study``."""
    return {
        "SOPInstanceUID": f"{ROOT}.{study}.{series}.{number}",
        "StudyInstanceUID": f"{ROOT}.{study}",
        "SeriesInstanceUID": f"{ROOT}.{study}.{series}",
        "PatientName": f"scale^{study}",
        "PatientID": f"P{study}",
        "StudyDate": f"{2000 + study % 25}{1 + study % 12:02d}{1 + study % 28:02d}",
        "StudyID": str(study),
        "AccessionNumber": f"A{study}",
    }


#: What each instance carries besides its UIDs, names and image (``--header``):
#: nothing, or the header of a real CT image (pydicom's ``CT_small.dcm``, about
#: 100 elements: 2.3 KB of stored metadata per instance against 0.3 KB).
HEADER = Dataset()


def real_header() -> Dataset:
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelData
    return ds


def tiny_instance(study: int, series: int, number: int) -> bytes:
    """One 8x8 CT image of study ``study``; UIDs, names and dates follow the numbers."""
    ds = copy.deepcopy(HEADER)
    ds.SOPClassUID = CT
    for keyword, value in instance_values(study, series, number).items():
        setattr(ds, keyword, value)
    ds.Modality = "CT"
    ds.SeriesNumber = series
    ds.InstanceNumber = number
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = PIXELS
    ds["PixelData"].VR = "OW"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def multipart(*parts: bytes) -> bytes:
    out = b""
    for part in parts:
        out += f"\r\n--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part
    return out + f"\r\n--{BOUNDARY}--\r\n".encode()


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def scratch_input() -> Path:
    """Where the generated P10 files wait for their conversion: off the archive's
    file system when a memory one is there (``/dev/shm``).

    They are the benchmark's scaffolding, deleted after each conversion.  On
    ext4 without a journal, creating a file costs more the more inodes of its
    block group were freed in the last minutes (the allocator skips each one
    it finds, ``recently_deleted()``): 90,000 inputs deleted next to the
    archive would charge the writes measured next for them.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != WORK.stat().st_dev:
        return shm / f"dwa-scale-input-{os.getpid()}"
    return WORK / "input"


#: Seconds after which ext4 no longer skips a freed inode: 5 s, or 305 s while
#: the block of the inode table holding it is dirty (``recently_deleted()``).
FORGOTTEN = 310


def remove_settled(folder: Path) -> None:
    """Remove what a previous run left in ``folder``, then wait until the file
    system no longer skips its inodes: measured right after deleting millions
    of files, the first points (in the same block groups) would be the dearer."""
    if folder.exists():
        print(f"# removing {folder}, then {FORGOTTEN} s for the file system", file=sys.stderr)
        shutil.rmtree(folder)
        settle(FORGOTTEN)


def settle(seconds: float) -> None:
    """Write everything out, then wait ``seconds``: the file system forgets the
    inodes the build freed (see :func:`scratch_input`) before a point is
    measured again."""
    if seconds > 0:
        os.sync()
        time.sleep(seconds)


def convert(archive: Path, folder: Path, instances: Iterator[bytes]) -> tuple[int, float]:
    """Write ``instances`` into ``folder`` and convert it; returns (count, converter s)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    count = 0
    for count, data in enumerate(instances, 1):
        (folder / f"{count}.dcm").write_bytes(data)
    result = Converter(archive, ConvertOptions(workers=2)).convert([str(folder)])
    assert result.ok, result.failures
    shutil.rmtree(folder)
    return count, result.seconds


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def stow(client: TestClient, data: bytes) -> None:
    body, headers = multipart(data), {"Content-Type": MULTIPART}
    response = client.post("/dicomweb/studies", content=body, headers=headers)
    assert response.status_code == 200, response.text


def timed_stow(client: TestClient, data: bytes) -> float:
    started = time.perf_counter()
    stow(client, data)
    return (time.perf_counter() - started) * 1000


#: Seconds between STOW-RS requests of the study-size curve.
PACE = 0.05
_CATALOGS: dict[Path, Catalog] = {}


def refresh_once(archive: Path, named: str | None = None) -> None:
    """One refresh of study 1 after a write, by a catalog that refreshed it before
    (what the server's flusher does at each turn): the whole study marked, or
    the instance ``named`` (of series 1) as STOW-RS names what it stored."""
    catalog = _CATALOGS.get(archive)
    if catalog is None:
        catalog = _CATALOGS[archive] = Catalog(open_archive(archive))
        catalog.settle([f"{ROOT}.1"])
    changed = None if named is None else [(f"{ROOT}.1.1", named)]
    catalog.journal.mark_stale(f"{ROOT}.1", changed)
    catalog.settle([f"{ROOT}.1"])


def study_sizes(sizes: list[int], repeat: int) -> list[str]:
    archive = WORK / "study-sizes"
    shutil.rmtree(archive, ignore_errors=True)
    assert Converter(archive, ConvertOptions(workers=1)).convert([]).ok
    lines = [
        "| Study size | first flush s | STOW p50 ms | STOW p99 ms | refresh ms "
        "(study marked) | refresh ms (one instance named) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    held = 0
    journal = Journal(open_archive(archive))
    with TestClient(create_app(archive)) as client:
        for size in sizes:
            start = held
            convert(archive, scratch_input(), (tiny_instance(1, 1, n) for n in range(start, size)))
            held = size
            # The server's first refresh of the grown study reads every instance
            # it has not read yet (once per process): timed apart, then the curve.
            started = time.perf_counter()
            stow(client, tiny_instance(1, 1, 2 * 10**6 + size))
            while journal.stale():
                time.sleep(0.05)
            first = time.perf_counter() - started
            # Paced as a modality sends: the flusher's turns fall among the requests.
            samples = []
            for n in range(10**6 + size, 10**6 + size + repeat):
                samples.append(timed_stow(client, tiny_instance(1, 1, n)))
                time.sleep(PACE)
            p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
            refresh = statistics.median(timed(lambda: refresh_once(archive), 5))
            sent = f"{ROOT}.1.1.{10**6 + size}"
            named = statistics.median(timed(functools.partial(refresh_once, archive, sent), 5))
            lines.append(
                f"| {size:,} | {first:.1f} | {p50:.1f} | {p99:.1f} | {refresh:.0f} | {named:.0f} |"
            )
            print(lines[-1], file=sys.stderr)
    return lines


def archive_sizes(sizes: list[int], repeat: int, batch: int, wait: float) -> list[str]:
    """Each point measured right after the conversion that grew the archive, then
    once more after :func:`settle` (``wait`` seconds): the same writes, without
    the file system's cost of what the build deleted.  The archive of an
    earlier run goes first (:func:`remove_settled`); this one is kept."""
    archive = WORK / "archive-sizes"
    remove_settled(archive)
    assert Converter(archive, ConvertOptions(workers=1)).convert([]).ok
    lines = [
        "| Archive studies | STOW p50 / p99 ms, right after | settled "
        "| convert ms/instance, right after | settled "
        "| QIDO PatientName p50 ms | QIDO StudyDate p50 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    held = 0
    extra = iter(range(10**7, 10**8))
    with TestClient(create_app(archive)) as client:

        def writes() -> tuple[str, str]:
            print(f"# measuring at {time.monotonic():.3f} (monotonic)", file=sys.stderr)
            stow_ms = [timed_stow(client, tiny_instance(next(extra), 1, 1)) for _ in range(repeat)]
            new = (tiny_instance(next(extra), 1, 1) for _ in range(batch))
            count, seconds = convert(archive, scratch_input(), new)
            print(f"# measured at {time.monotonic():.3f} (monotonic)", file=sys.stderr)
            stow = f"{percentile(stow_ms, 0.5):.1f} / {percentile(stow_ms, 0.99):.1f}"
            return stow, f"{seconds / count * 1000:.2f}"

        def qido(query: str) -> float:
            url = f"/dicomweb/studies?{query}&limit=100"
            return statistics.median(timed(lambda: client.get(url).raise_for_status(), repeat))

        for size in sizes:
            start = held
            new = (tiny_instance(s, 1, 1) for s in range(start, size))
            convert(archive, scratch_input(), new)
            held = size
            stow_after, convert_after = writes()
            settle(wait)
            stow_settled, convert_settled = writes()
            name_ms = qido("PatientName=scale*1*")
            date_ms = qido("StudyDate=20030101-20050601")
            lines.append(
                f"| {size:,} | {stow_after} | {stow_settled} | {convert_after} "
                f"| {convert_settled} | {name_ms:.1f} | {date_ms:.1f} |"
            )
            print(lines[-1], file=sys.stderr)
    return lines


def synthetic_study(template: JSONDataset, number: int) -> StudyDocuments:
    """The documents of one more one-instance study, as the catalog writes them.

    The instance is ``template`` (a converted tiny instance's metadata) with the
    UIDs, names, IDs and date :func:`tiny_instance` gives study ``number``.
    """
    values = instance_values(number, 1, 1)
    instance = copy.deepcopy(template)
    for keyword, value in values.items():
        element = instance[getattr(tags, keyword)]
        element["Value"] = [{"Alphabetic": value} if element["vr"] == "PN" else value]
    series = {values["SeriesInstanceUID"]: [instance]}
    return study_documents(values["StudyInstanceUID"], series)


QIDO_QUERIES = {
    "PatientName wildcard": [(tags.PatientName, "PN", "scale*1*")],
    "StudyDate range": [(tags.StudyDate, "DA", "20030101-20050601")],
    "PatientID": [(tags.PatientID, "LO", "P4242")],
    "ModalitiesInStudy + StudyDate": [
        (tags.ModalitiesInStudy, "CS", "CT"),
        (tags.StudyDate, "DA", "20240101-"),
    ],
}


def refresh_sizes(sizes: list[int], repeat: int) -> list[str]:
    """CPU ms of ``Catalog.settle`` of one study after one new instance (stored
    as STOW-RS stores it), by a catalog that refreshed the study before, as the
    server's flusher does at each turn; median of ``repeat``.  The studies are
    kept in ``WORK/refresh-{size}`` between runs (another build measures the
    same archives: run it with another ``PYTHONPATH``)."""
    lines = ["| Study size | refresh CPU ms (median) | min | max |", "|---:|---:|---:|---:|"]
    study = f"{ROOT}.1"
    for size in sizes:
        root = WORK / f"refresh-{size}"
        if not (root / "studies" / study).exists():
            shutil.rmtree(root, ignore_errors=True)
            assert Converter(root, ConvertOptions(workers=1)).convert([]).ok
            convert(root, scratch_input(), (tiny_instance(1, 1, n) for n in range(size)))
        archive = open_archive(root)
        catalog = Catalog(archive)
        catalog.open_index().close()
        catalog.settle([study])
        options = ConvertOptions()
        samples = []
        for _ in range(repeat):
            data = tiny_instance(1, 1, 10**7 + time.time_ns() % 10**9)
            stored = store_instance(archive, options, read_instance(io.BytesIO(data), "new"))
            assert stored.key is not None
            if hasattr(catalog, "defer_instances"):
                catalog.defer_instances([stored.key])  # as STOW-RS marks it
            else:  # a build before instances were named
                catalog.defer([study])
            started = time.process_time()
            catalog.settle([study])
            samples.append((time.process_time() - started) * 1000)
        median = statistics.median(samples)
        lines.append(f"| {size:,} | {median:.1f} | {min(samples):.1f} | {max(samples):.1f} |")
        print(lines[-1], file=sys.stderr)
    return lines


def _template(archive: Path) -> JSONDataset:
    """An archive of one converted tiny study; its instance's metadata."""
    shutil.rmtree(archive, ignore_errors=True)
    convert(archive, scratch_input(), iter([tiny_instance(0, 1, 1)]))
    return open_archive(archive).read_json_gz(
        f"studies/{ROOT}.0/series/{ROOT}.0.1/instances/{ROOT}.0.1.1/metadata.gz"
    )[0]


def _fill(index: QidoIndex, template: JSONDataset, first: int, end: int) -> None:
    """Index synthetic studies ``first`` to ``end - 1``, as the catalog would."""
    rows = FreshRows()
    with index.transaction():
        for number in range(first, end):
            _add_rows(rows, synthetic_study(template, number))
            if len(rows) >= BATCH_ROWS:
                index.insert(rows)
        index.insert(rows)


def _add_rows(rows: FreshRows, docs: StudyDocuments) -> None:
    series = [(one.row, one.instance_rows) for one in docs.series]
    rows.add(docs.study_instance_uid, docs.row, docs.deduplicated, series)


def index_sizes(sizes: list[int], repeat: int) -> list[str]:
    """QIDO-RS searches (``limit=100``) run on the SQLite index alone, filled with
    the documents of synthetic studies (no study folders: the index of a 100k-study
    archive without converting 100k studies)."""
    archive = WORK / "index-sizes"
    template = _template(archive)
    lines = [
        "| Index studies | " + " | ".join(f"{name} p50 ms" for name in QIDO_QUERIES) + " |",
        "|---:|" + "---:|" * len(QIDO_QUERIES),
    ]
    held = 1
    with Catalog(open_archive(archive)).open_index() as index:
        for size in sizes:
            _fill(index, template, held, size)
            held = size
            cells = []
            for match in QIDO_QUERIES.values():
                query = Query(match=match, limit=101)
                samples = timed(lambda q=query: index.search(Level.STUDY, q), repeat)
                cells.append(f"{statistics.median(samples):.1f}")
            lines.append(f"| {size:,} | " + " | ".join(cells) + " |")
            print(lines[-1], file=sys.stderr)
    return lines


def http_queries(size: int) -> dict[str, str]:
    """The QIDO-RS searches of :func:`http_sizes` on an index of ``size`` studies.

    OHIF sends ``*value*`` for names, IDs and accession numbers.  A "rare" search
    matches one study at every size (the last one's number), the others fill
    their page at every size.
    """
    last = size - 1
    return {
        "PatientName wildcard": "PatientName=scale*1*",
        "PatientName prefix": "PatientName=SCALE^1*",
        "rare PatientName prefix": f"PatientName=SCALE^{last}*",
        "rare PatientName, OHIF": f"PatientName=*le^{last}*",
        "rare PatientName": f"PatientName=Scale^{last}",
        "PatientID": f"00100020=P{last}",
        "PatientID prefix": "PatientID=P1*",
        "rare PatientID prefix": f"PatientID=P{last}*",
        "AccessionNumber": f"AccessionNumber=A{last}",
        "rare AccessionNumber, OHIF": f"AccessionNumber=*{last}*",
        "StudyDate range": "StudyDate=20030101-20050601",
        "ModalitiesInStudy + StudyDate": "ModalitiesInStudy=CT&StudyDate=20200101-",
        "StudyInstanceUID": f"StudyInstanceUID={ROOT}.{last}",
        "OHIF study list": "fuzzymatching=false"
        "&includefield=00081030%2C00080060%2C00080090%2C00100030",
        "study list, offset 900": "offset=900",
        "PatientName wildcard, offset 900": "PatientName=scale*&offset=900",
        "study list, offset half": f"offset={size // 2}",
    }


@contextlib.contextmanager
def served(archive: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``dwa serve ARCHIVE`` (uvicorn) on a free port: its service root and process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "dicomweb_archive.cli", "serve", str(archive)]
    server = subprocess.Popen([*command, "--port", str(port), "--no-access-log"])
    base = f"http://127.0.0.1:{port}/dicomweb"
    try:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/studies?limit=1").status_code == 200:
                    break
            time.sleep(0.5)
        yield base, server
    finally:
        server.terminate()
        server.wait()


def _cpu_seconds(pid: int) -> float:
    """The CPU time the threads of process ``pid`` have used so far (the
    scheduler's nanoseconds, not clock ticks)."""
    used = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            used += int((task / "schedstat").read_text().split()[0])
    return used / 1e9


def http_sizes(sizes: list[int], repeat: int) -> list[str]:
    """QIDO-RS through a real ``dwa serve`` over an index of synthetic studies,
    ``limit=100``: p50 / p99 ms of ``repeat`` requests each on one kept-alive
    connection as the client sees them, and the server's CPU ms per request
    (its own CPU time over the requests: what load on the machine does not
    change).  The searches take turns, so a burst of load meets them all."""
    archive = WORK / "http-sizes"
    template = _template(archive)
    names = list(http_queries(1))
    lines = [
        "| Query | "
        + " | ".join(f"{size:,}: p50 / p99 ms, CPU ms (rows)" for size in sizes)
        + " | CPU largest ÷ smallest |",
        "|---|" + "---|" * (len(sizes) + 1),
    ]
    cells: dict[str, list[str]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    held = 1
    for size in sizes:
        with Catalog(open_archive(archive)).open_index() as index:
            _fill(index, template, held, size)
        held = size
        urls = {name: f"{query}&limit=100" for name, query in http_queries(size).items()}
        samples: dict[str, list[float]] = {name: [] for name in names}
        used = dict.fromkeys(names, 0.0)
        found = dict.fromkeys(names, 0)
        with served(archive) as (base, server), httpx.Client(base_url=base) as client:
            for url in urls.values():  # connection, caches
                client.get(f"/studies?{url}").raise_for_status()
            for _ in range(repeat):
                for name, url in urls.items():
                    started, busy = time.perf_counter(), _cpu_seconds(server.pid)
                    response = client.get(f"/studies?{url}").raise_for_status()
                    samples[name].append((time.perf_counter() - started) * 1000)
                    used[name] += _cpu_seconds(server.pid) - busy
                    found[name] = len(response.json())
        for name in names:
            p50, p99 = percentile(samples[name], 0.5), percentile(samples[name], 0.99)
            cpu[name].append(used[name] / repeat * 1000)
            cells[name].append(f"{p50:.1f} / {p99:.1f}, {cpu[name][-1]:.1f} ({found[name]})")
            print(f"{size:,} {name}: {cells[name][-1]}", file=sys.stderr)
    for name in names:
        ratio = cpu[name][-1] / cpu[name][0] if cpu[name][0] else float("nan")
        lines.append(f"| {name} | " + " | ".join(cells[name]) + f" | {ratio:.2f} |")
    return lines


def add_synthetic_studies(archive: Archive, template: JSONDataset, numbers: range) -> None:
    """Studies with their QIDO-RS documents and index rows but no instances,
    waiting to be listed (a 100k-study list without converting 100k studies)."""
    catalog = Catalog(archive)
    rows = FreshRows()
    with catalog.open_index() as index, index.transaction():
        for number in numbers:
            docs = synthetic_study(template, number)
            study, store = docs.study_instance_uid, archive.store
            store.write_json_gz(paths.study_row(study), [docs.row])
            store.write_json_gz(paths.series_index(study), docs.series_rows)
            for one in docs.series:
                store.write_json_gz(
                    paths.instances_index(study, one.series_instance_uid), one.instance_rows
                )
            store.write_json_gz(paths.deduplicated(study), docs.deduplicated)
            _add_rows(rows, docs)
            index.insert(rows)
            catalog.journal.mark_unlisted(study)


def listing_sizes(sizes: list[int], repeat: int) -> list[str]:
    """The flush after one new study, as the server's flusher does it after a
    STOW-RS (the instance stored by ``store_instance``, its study deferred, then
    ``Catalog.flush``: the study's documents, index rows and the study list),
    in archives of synthetic studies (:func:`add_synthetic_studies`): CPU ms of
    the flush (median and max of ``repeat``) and its peak traced memory (one more
    flush under tracemalloc); then STOW-RS p50/p99 of one new study each through
    the server (its flusher running), paced :data:`PACE` apart."""
    template = _template(WORK / "listing-sizes")
    opened = open_archive(WORK / "listing-sizes")
    catalog = Catalog(opened)  # one for the run, as the server's flusher keeps
    options = ConvertOptions()
    extra = iter(range(10**7, 10**8))
    lines = [
        "| Archive studies | fill: list ms/study | flush CPU p50 ms | flush CPU max ms "
        "| flush wall p50 ms | flush peak traced MB | STOW p50 ms | STOW p99 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def one_flush() -> tuple[float, float]:
        number = next(extra)
        parsed = read_instance(io.BytesIO(tiny_instance(number, 1, 1)), f"{number}.dcm")
        store_instance(opened, options, parsed)
        catalog.defer([parsed.study_instance_uid])
        cpu, wall = time.process_time(), time.perf_counter()
        catalog.flush()
        return (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000

    held = 1
    for size in sizes:
        add_synthetic_studies(opened, template, range(held, size))
        started = time.process_time()
        catalog.flush()  # the new rows listed in one batch
        fill = (time.process_time() - started) * 1000 / max(1, size - held)
        held = size
        samples = [one_flush() for _ in range(repeat)]
        tracemalloc.start()
        one_flush()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        stow_ms = []
        with TestClient(create_app(WORK / "listing-sizes")) as client:
            for _ in range(repeat):
                stow_ms.append(timed_stow(client, tiny_instance(next(extra), 1, 1)))
                time.sleep(PACE)
        cpu = [c for c, _ in samples]
        lines.append(
            f"| {size:,} | {fill:.2f} | {statistics.median(cpu):.1f} | {max(cpu):.1f} "
            f"| {statistics.median(w for _, w in samples):.1f} | {peak:.1f} "
            f"| {percentile(stow_ms, 0.5):.1f} | {percentile(stow_ms, 0.99):.1f} |"
        )
        print(lines[-1], file=sys.stderr)
    return lines


def rebuild_rates(studies: int, instances: int, repeat: int) -> list[str]:
    """``QidoIndex.rebuild`` (what ``dwa index`` runs after the study list): an
    archive of ``studies`` synthetic one-instance studies (their documents
    written directly, :func:`add_synthetic_studies`), and one converted study of
    ``instances`` instances; instances per CPU second of the process and per wall
    second, median of ``repeat``, with the load average after each."""
    lines = [
        "| Archive | instances | per CPU s (median) | per wall s (median) | load average |",
        "|---|---:|---:|---:|---|",
    ]
    many = WORK / f"rebuild-{studies}"
    if not (many / "studies" / f"{ROOT}.{studies - 1}").exists():
        template = _template(many)
        add_synthetic_studies(open_archive(many), template, range(1, studies))
    large = WORK / f"rebuild-study-{instances}"
    if not (large / "studies" / f"{ROOT}.1").exists():
        shutil.rmtree(large, ignore_errors=True)
        assert Converter(large, ConvertOptions(workers=1)).convert([]).ok
        convert(large, scratch_input(), (tiny_instance(1, 1, n) for n in range(instances)))
    for name, root, count in (
        (f"{studies:,} one-instance studies", many, studies),
        (f"one study of {instances:,} instances", large, instances),
    ):
        cpu, wall, loads = [], [], []
        for _ in range(repeat):
            with QidoIndex(open_archive(root)) as index:
                started, busy = time.perf_counter(), time.process_time()
                assert index.rebuild() >= 1
                cpu.append(count / (time.process_time() - busy))
                wall.append(count / (time.perf_counter() - started))
            loads.append(f"{os.getloadavg()[0]:.1f}")
        lines.append(
            f"| {name} | {count:,} | {statistics.median(cpu):,.0f} "
            f"| {statistics.median(wall):,.0f} | {', '.join(loads)} |"
        )
        print(lines[-1], file=sys.stderr)
    return lines


def _kilobytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def server_memory(archives: list[Path], requests: int = 200) -> list[str]:
    """Resident memory of ``dwa serve`` over each archive: after start-up, then
    after ``requests`` QIDO-RS pages (PatientName wildcard, StudyDate range,
    ``limit=100``, offsets 0-900) and a STOW-RS of one new study, flushed into
    the study list."""
    lines = [
        "| Archive | studies in index | RSS after start MB | after searches MB | peak MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for archive in archives:
        with served(archive) as (base, server):
            started = _kilobytes(server.pid, "VmRSS")
            with httpx.Client() as client:
                for n in range(requests):
                    query = ("PatientName=scale*1*", "StudyDate=20030101-20050601")[n % 2]
                    offset = 100 * (n % 10)
                    url = f"{base}/studies?{query}&limit=100&offset={offset}"
                    client.get(url).raise_for_status()
                body = multipart(tiny_instance(9 * 10**7, 1, 1))
                response = client.post(
                    f"{base}/studies", content=body, headers={"Content-Type": MULTIPART}
                )
                response.raise_for_status()
                client.get(f"{base}/studies?PatientID=P{9 * 10**7}").raise_for_status()
            journal = Journal(open_archive(archive))
            for _ in range(1200):  # the flusher's rewrite of the study list, done
                if not journal.unlisted():
                    break
                time.sleep(0.1)
            searched = _kilobytes(server.pid, "VmRSS")
            peak = _kilobytes(server.pid, "VmHWM")
            with sqlite3.connect(archive / INDEX_PATH) as db:
                count = db.execute("SELECT count(*) FROM studies").fetchone()[0]
        lines.append(
            f"| {archive.name} | {count:,} | {started / 1024:.0f} | {searched / 1024:.0f} "
            f"| {peak / 1024:.0f} |"
        )
        print(lines[-1], file=sys.stderr)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--large", action="store_true", help="add 5,000 and 100,000")
    parser.add_argument("--repeat", type=int, default=20, help="samples per point")
    parser.add_argument("--batch", type=int, default=100, help="instances per convert point")
    parser.add_argument(
        "--only",
        choices=["studies", "archives", "index", "refresh", "http", "listing", "rebuild"],
        help="one curve only (http: QIDO-RS through dwa serve on the index alone)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=60,
        metavar="SECONDS",
        help="archive sizes: each point measured again after sync and this wait",
    )
    parser.add_argument(
        "--memory", type=Path, nargs="+", metavar="ARCHIVE", help="only: dwa serve's memory"
    )
    parser.add_argument(
        "--header",
        choices=["tiny", "real"],
        default="tiny",
        help="instances with a real CT header (real) or only what the curves need (tiny)",
    )
    args = parser.parse_args()
    if args.header == "real":
        global HEADER
        HEADER = real_header()
    if args.memory:
        print("\n".join(server_memory(args.memory)))
        return
    WORK.mkdir(parents=True, exist_ok=True)
    studies = [10, 100, 1000] + ([5000] if args.large else [])
    archives = [10, 1000, 10000] + ([100000] if args.large else [])
    indexes = [1000, 10000, 100000]
    started = time.perf_counter()
    if args.only in (None, "studies"):
        print("\n".join(study_sizes(studies, args.repeat)) + "\n")
    if args.only in (None, "archives"):
        print("\n".join(archive_sizes(archives, args.repeat, args.batch, args.settle)) + "\n")
    if args.only == "refresh":
        print("\n".join(refresh_sizes([10, 100, 1000, 5000], args.repeat)))
    if args.only in (None, "index"):
        print("\n".join(index_sizes(indexes, args.repeat)))
    if args.only == "http":
        print("\n".join(http_sizes(indexes, args.repeat)))
    if args.only == "rebuild":
        print("\n".join(rebuild_rates(10_000, 1_000, min(args.repeat, 5))))
    if args.only in (None, "listing"):
        print("\n".join(listing_sizes(indexes, args.repeat)))
    print(f"\n({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
