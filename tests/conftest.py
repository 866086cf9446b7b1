from __future__ import annotations

import contextlib
import gzip
import itertools
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.objectstore import MotoServer, moto_server


class _KeptErrors(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def errors_logged(name: str = "") -> Iterator[list[str]]:
    """The messages of the error records ``name``'s logger (the root's by
    default) handles within the block.  uvicorn's ``uvicorn.error`` passes none
    on to the root, and uvicorn sets its logging up when it starts: ask it by
    name once the server runs."""
    messages: list[str] = []
    handler = _KeptErrors(messages)
    logger = logging.getLogger(name or None)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


MakeInstance = Callable[..., Path]


def write_instance(
    folder: Path,
    *,
    study: str,
    series: str,
    sop: str | None = None,
    patient_name: str = "Doe^Jane",
    patient_id: str = "PID-1",
    instance_number: int = 1,
    frames: int = 1,
    rows: int = 16,
    columns: int = 16,
    modality: str = "CT",
    series_number: int = 1,
    private_bytes: int = 0,
) -> Path:
    """A small but complete CT-like P10 file."""
    sop = sop or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = sop
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC1"
    ds.Modality = modality
    ds.ReferringPhysicianName = "Ref^Doc"
    ds.StudyDescription = "Test study"
    ds.SeriesDescription = f"Series {series_number}"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyID = "S1"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = [0.0, 0.0, float(instance_number)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    if frames > 1:
        ds.NumberOfFrames = frames
    if private_bytes:
        block = ds.private_block(0x0011, "DWA TEST", create=True)
        block.add_new(0x01, "OB", bytes(range(256)) * (private_bytes // 256 + 1))
    rng = np.random.default_rng(instance_number)
    pixels = rng.integers(-1000, 2000, size=(frames, rows, columns), dtype=np.int16)
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"
    path = folder / f"{sop}.dcm"
    folder.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def make_instance(tmp_path: Path) -> MakeInstance:
    def make(**kwargs: Any) -> Path:
        return write_instance(tmp_path / "input", **kwargs)

    return make


@pytest.fixture
def moving_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wall clock 2 s further on at each reading (``time.time``, ``localtime()``, ``gmtime()``).

    Whatever carries the current time (a ZIP member's date, a ``Date`` header)
    then differs between any two answers, deterministically: no waiting for a
    2-second boundary.
    """
    start, ticks = time.time(), itertools.count()
    localtime, gmtime = time.localtime, time.gmtime

    def now() -> float:
        return start + 2.0 * next(ticks)

    def at(secs: float | None) -> float:
        return now() if secs is None else secs

    monkeypatch.setattr(time, "time", now)
    monkeypatch.setattr(time, "localtime", lambda secs=None: localtime(at(secs)))
    monkeypatch.setattr(time, "gmtime", lambda secs=None: gmtime(at(secs)))


def read_json_gz(path: Path) -> Any:
    return orjson.loads(gzip.decompress(path.read_bytes()))


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every served file of an archive with its mtime and content."""
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".dwa"]
        for name in files:
            path = Path(folder, name)
            out[str(path.relative_to(root))] = (path.stat().st_mtime_ns, path.read_bytes())
    return out


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mount tiny tmpfs file systems (needs root), to meet a real ENOSPC."""
    import subprocess

    mounted: list[Path] = []

    def mount(size: int) -> Path:
        target = tmp_path / f"fs{len(mounted)}"
        target.mkdir()
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
            capture_output=True,
            check=False,
        )
        if proc.returncode:
            pytest.skip(f"cannot mount a tmpfs: {proc.stderr.decode().strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A real S3 API (moto) on loopback for the whole session; see tests/objectstore.py."""
    with moto_server(tmp_path_factory.mktemp("s3-work")) as server:
        yield server


@pytest.fixture
def s3_url(s3_server: MotoServer) -> str:
    """``s3://{a new bucket}/archive``."""
    return f"s3://{s3_server.bucket()}/archive"


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory, s3_server: MotoServer) -> Iterator[Any]:
    """A Dask scheduler and two workers, separate processes on loopback (tests/cluster.py).

    Started after the S3 server: the workers inherit the environment that points
    S3 clients at it.
    """
    from tests.cluster import dask_cluster

    log = tmp_path_factory.mktemp("dask") / "cluster.log"
    with dask_cluster(2, log) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def dask_client(dask_cluster: Any) -> Iterator[Any]:
    """A client of :func:`dask_cluster`, its two workers up."""
    client = dask_cluster.client(2)
    yield client
    client.close()


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder (None) under ``root``, ``.dwa`` included.

    An SQLite database (``.dwa/*.sqlite``) is its tables' rows, sorted: its file
    also records how many transactions wrote it and where rows landed, which
    depend on the history rather than on the content.
    """
    out: dict[str, bytes | None] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            out[str(Path(folder, name).relative_to(root)) + "/"] = None
        for name in files:
            path = Path(folder, name)
            content = sqlite_content(path) if name.endswith(".sqlite") else path.read_bytes()
            out[str(path.relative_to(root))] = content
    return out


def sqlite_content(path: Path) -> bytes:
    """Every table of the SQLite database ``path`` with its rows, in sorted order."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as db:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        tables = [name for (name,) in db.execute(query)]
        return repr(
            [(table, sorted(map(repr, db.execute(f'SELECT * FROM "{table}"')))) for table in tables]
        ).encode()


def kill_then_finish(
    command: list[str],
    journal: Path,
    seed: int,
    finish: Callable[[Path], object],
    within: float = 0.3,
) -> None:
    """Run ``command``, SIGKILL it at a random point once a file appears in ``journal``
    (the operation has begun), then finish: by running ``command`` again (odd
    ``seed``) or by ``finish(journal)`` (what the next start of a writer does).

    The kill comes up to ``within`` seconds after the journal entry: about as long
    as the operation takes in process, so that it lands midway on a fast machine
    too.  An operation that ended before its kill leaves nothing to finish (a rerun
    would find its target gone); the caller's comparison still applies.
    """
    import random
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(command, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and any(journal.iterdir()):
            break
        time.sleep(0.001)
    time.sleep(random.Random(seed).uniform(0.0, within))
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    pending = journal.exists() and any(journal.iterdir())
    if seed % 2:
        if pending:
            rerun = subprocess.run(command, capture_output=True, text=True, check=False)
            assert rerun.returncode == 0, rerun.stderr
    else:
        finish(journal)
    assert not any(journal.iterdir())
