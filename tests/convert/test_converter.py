from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.batch import LOST_REASON
from dicomweb_archive.convert import task
from dicomweb_archive.convert.converter import settle_studies
from dicomweb_archive.convert.instance import InstanceOutcome
from dicomweb_archive.demo.samples import write_ct_series
from dicomweb_archive.errors import ArchiveOptionsMismatchError
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import INDEX_PATH, QidoIndex
from tests.conftest import MakeInstance, read_json_gz, snapshot, tree, write_instance

DWA = [sys.executable, "-m", "dicomweb_archive.cli"]


def convert(archive: Path, *inputs: Path | str, **options: object) -> object:
    opts = ConvertOptions(workers=1, **options)  # type: ignore[arg-type]
    return Converter(archive, opts).convert([str(i) for i in inputs])


def test_incremental_study_documents(tmp_path: Path, make_instance: MakeInstance) -> None:
    study, series = generate_uid(), generate_uid()
    first = make_instance(study=study, series=series, instance_number=2)
    second = make_instance(study=study, series=series, instance_number=1)
    other_series = make_instance(study=study, series=generate_uid(), series_number=2, modality="MR")
    archive = tmp_path / "archive"

    convert(archive, first)
    rows = read_json_gz(archive / paths.STUDIES_INDEX)
    assert rows[0]["00201208"]["Value"] == [1]

    result = convert(archive, second, other_series)
    assert result.counts["converted"] == 2  # type: ignore[attr-defined]
    [row] = read_json_gz(archive / paths.STUDIES_INDEX)
    assert row["0020000D"]["Value"] == [study]
    assert row["00201206"]["Value"] == [2]
    assert row["00201208"]["Value"] == [3]
    assert row["00080061"]["Value"] == ["CT", "MR"]
    assert row["00100010"]["Value"] == [{"Alphabetic": "Doe^Jane"}]
    assert row["00081190"]["Value"] == [f"studies/{study}"]

    series_meta = read_json_gz(archive / paths.series_metadata(study, series))
    assert [ds["00200013"]["Value"][0] for ds in series_meta] == [1, 2]
    study_meta = read_json_gz(archive / paths.study_metadata(study))
    assert len(study_meta) == 3
    instance_rows = read_json_gz(archive / paths.instances_index(study, series))
    assert {"00080016", "00080018", "00280010", "00080056"} <= set(instance_rows[0])
    series_rows = read_json_gz(archive / paths.series_index(study))
    assert [r["00201209"]["Value"][0] for r in series_rows] == [2, 1]
    assert all(not key.startswith("0009") for r in rows + series_rows for key in r)


def test_same_file_twice_changes_nothing(tmp_path: Path, make_instance: MakeInstance) -> None:
    source = make_instance(study=generate_uid(), series=generate_uid())
    archive = tmp_path / "archive"
    convert(archive, source, get_testdata_file("CT_small.dcm"))
    before = snapshot(archive)
    time.sleep(0.01)
    result = convert(archive, source, get_testdata_file("CT_small.dcm"))
    assert result.counts["unchanged"] == 2  # type: ignore[attr-defined]
    assert snapshot(archive) == before


def test_deduplicated_study_and_conflicts(tmp_path: Path, make_instance: MakeInstance) -> None:
    study, series = generate_uid(), generate_uid()
    a = make_instance(study=study, series=series, instance_number=1)
    b = make_instance(study=study, series=series, instance_number=2, patient_name="Doe^John")
    archive = tmp_path / "archive"
    result = convert(archive, a, b)
    [conflict] = result.conflicts  # type: ignore[attr-defined]
    assert conflict.keyword == "PatientName"
    assert "Doe^Jane" in conflict.message() and "Doe^John" in conflict.message()
    document = read_json_gz(archive / paths.deduplicated(study))
    assert "00100010" not in document["study"]  # not picked
    assert "00100020" in document["study"]  # shared, stored once
    assert document["conflicts"][0]["keyword"] == "PatientName"
    # Every instance is exactly recoverable from the deduplicated document.
    from dicomweb_archive.model.aggregate import reconstruct_instances

    full = read_json_gz(archive / paths.study_metadata(study))
    key = lambda ds: ds["00080018"]["Value"][0]  # noqa: E731
    assert sorted(reconstruct_instances(document), key=key) == sorted(full, key=key)


def test_bad_inputs_fail_alone(tmp_path: Path, make_instance: MakeInstance) -> None:
    good = make_instance(study=generate_uid(), series=generate_uid())
    garbage = tmp_path / "garbage.dcm"
    garbage.write_bytes(os.urandom(4096))
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(good.read_bytes()[:-100])
    mid_garbage = tmp_path / "mid.dcm"
    data = bytearray(good.read_bytes())
    data[400:460] = b"\xff" * 60
    mid_garbage.write_bytes(bytes(data))
    no_preamble = tmp_path / "empty.dcm"
    no_preamble.write_bytes(b"")
    archive = tmp_path / "archive"
    result = convert(
        archive, garbage, truncated, good, mid_garbage, no_preamble, tmp_path / "missing.dcm"
    )
    assert result.counts["converted"] == 1, result.to_json()  # type: ignore[attr-defined]
    reasons = {Path(f.name).name: f.reason for f in result.failures}  # type: ignore[attr-defined]
    assert set(reasons) == {"garbage.dcm", "truncated.dcm", "mid.dcm", "empty.dcm", "missing.dcm"}
    assert "not a DICOM file" in reasons["garbage.dcm"]
    assert "Pixel Data" in reasons["truncated.dcm"]
    assert reasons["empty.dcm"] == "empty file"
    assert reasons["missing.dcm"] == "no such file or folder"
    assert all("\n" not in r for r in reasons.values())
    assert not list((archive / ".dwa" / "tmp").iterdir())


def test_inputs_folder_zip_and_stdin(tmp_path: Path) -> None:
    study = generate_uid()
    folder = tmp_path / "in"
    a = write_instance(folder / "deep" / "er", study=study, series=generate_uid())
    b = write_instance(tmp_path / "zipped", study=study, series=generate_uid())
    c = write_instance(tmp_path / "stdin", study=study, series=generate_uid())
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.write(b, "some/where/b.dcm")
        zf.writestr("notes.txt", "not dicom")
    archive = tmp_path / "archive"
    proc = subprocess.run(
        [*DWA, "convert", str(folder), str(bundle), "-", "-o", str(archive), "--json"],
        input=c.read_bytes(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr  # notes.txt in the ZIP is not DICOM: skipped
    import orjson

    summary = orjson.loads(proc.stdout)
    assert summary["converted"] == 3
    assert summary["failed"] == 0 and summary["skipped"] == 1
    assert summary["skippedInputs"][0]["input"] == f"{bundle}:notes.txt"
    assert b"skipped: " in proc.stderr and b"notes.txt" in proc.stderr
    [row] = read_json_gz(archive / paths.STUDIES_INDEX)
    assert row["00201208"]["Value"] == [3]
    assert not [p for p in (archive / ".dwa" / "tmp").iterdir()]
    del a


def test_options_must_match_the_archive(tmp_path: Path, make_instance: MakeInstance) -> None:
    source = make_instance(study=generate_uid(), series=generate_uid())
    archive = tmp_path / "archive"
    convert(archive, source)
    with pytest.raises(ArchiveOptionsMismatchError, match="frames"):
        convert(archive, source, frames="raw")


def test_raw_frames_and_bulk_thresholds(tmp_path: Path, make_instance: MakeInstance) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    source = make_instance(study=study, series=series, sop=sop, frames=3, private_bytes=100)
    archive = tmp_path / "archive"
    convert(archive, source, frames="raw", private_bulk_size=1000)
    ds = pydicom.dcmread(source)
    frame = (archive / paths.frame_path(study, series, sop, 2)).read_bytes()
    length = 16 * 16 * 2
    assert frame == ds.PixelData[length : 2 * length]
    [meta] = read_json_gz(archive / paths.instance_metadata(study, series, sop))
    assert "InlineBinary" in meta["00111001"]
    assert meta["7FE00010"]["BulkDataURI"] == f"series/{series}/instances/{sop}/frames"

    archive2 = tmp_path / "archive2"
    convert(archive2, source)
    [meta] = read_json_gz(archive2 / paths.instance_metadata(study, series, sop))
    uri = meta["00111001"]["BulkDataURI"]
    assert uri.startswith("bulkdata/")
    headers, payload = multipart.unwrap((archive2 / "studies" / study / uri).read_bytes())
    assert payload == ds[0x00111001].value
    assert headers["content-type"] == "application/octet-stream"
    assert (archive2 / paths.frame_path(study, series, sop, 3)).exists()
    assert not (archive2 / paths.frame_path(study, series, sop, 4)).exists()


def test_parallel_workers_match_one_worker(tmp_path: Path) -> None:
    study = generate_uid()
    series = generate_uid()
    inputs = tmp_path / "in"
    for n in range(12):
        write_instance(inputs, study=study, series=series, instance_number=n + 1)
    one, many = tmp_path / "one", tmp_path / "many"
    Converter(one, ConvertOptions(workers=1)).convert([str(inputs)])
    result = Converter(many, ConvertOptions(workers=3)).convert([str(inputs)])
    assert result.counts["converted"] == 12
    assert {k: v[1] for k, v in snapshot(one).items()} == {
        k: v[1] for k, v in snapshot(many).items()
    }


def test_two_processes_on_one_archive(tmp_path: Path) -> None:
    study = generate_uid()
    inputs = [tmp_path / "a", tmp_path / "b"]
    for n in range(30):
        write_instance(
            inputs[n % 2],
            study=study,
            series=generate_uid() if n < 4 else "1.2.3",
            instance_number=n + 1,
        )
    archive = tmp_path / "archive"
    procs = [
        subprocess.Popen(
            [*DWA, "convert", str(folder), str(tmp_path / "a"), "-o", str(archive), "-q"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for folder in inputs
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    reference = tmp_path / "reference"
    Converter(reference, ConvertOptions(workers=1)).convert([str(f) for f in inputs])
    assert {k: v[1] for k, v in snapshot(archive).items()} == {
        k: v[1] for k, v in snapshot(reference).items()
    }


def _valid(archive: Path) -> None:
    """Every committed instance is whole; every document parses."""
    for meta_path in archive.glob("studies/*/series/*/instances/*/metadata.gz"):
        [meta] = read_json_gz(meta_path)
        frames = meta_path.parent / "frames"
        if "7FE00010" in meta:
            assert (frames / "1").exists()
            for frame in frames.iterdir():
                multipart.unwrap(frame.read_bytes())
    for document in archive.glob("studies/**/*.gz"):
        read_json_gz(document)


@pytest.mark.parametrize("delay", [0.0, 0.5, 1.5])
def test_killed_run_leaves_a_valid_archive(tmp_path: Path, delay: float) -> None:
    study, series = generate_uid(), generate_uid()
    inputs = tmp_path / "in"
    for n in range(60):
        write_instance(
            inputs,
            study=study,
            series=series,
            instance_number=n + 1,
            rows=256,
            columns=256,
            frames=2,
        )
    archive = tmp_path / "archive"
    proc = subprocess.Popen(
        [*DWA, "convert", str(inputs), "-o", str(archive), "-q", "-w", "2"], start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(
        archive.glob("studies/*/series/*/instances/*/metadata.gz")
    ):
        time.sleep(0.005)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _valid(archive)
    result = Converter(archive, ConvertOptions(workers=2)).convert([str(inputs)])
    assert result.ok
    reference = tmp_path / "reference"
    Converter(reference, ConvertOptions(workers=1)).convert([str(inputs)])
    assert {k: v[1] for k, v in snapshot(archive).items()} == {
        k: v[1] for k, v in snapshot(reference).items()
    }


def test_memory_stays_bounded_for_a_large_multiframe_file(tmp_path: Path) -> None:
    """A 400 MB file converts in a process that never holds it whole."""
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    source = write_instance(
        tmp_path / "in", study=study, series=series, sop=sop, rows=512, columns=512, frames=800
    )
    size = source.stat().st_size
    assert size > 400_000_000
    archive = tmp_path / "archive"
    code = (
        "import re\n"
        "from dicomweb_archive import Converter, ConvertOptions\n"
        f"r = Converter({str(archive)!r}, ConvertOptions(workers=1)).convert([{str(source)!r}])\n"
        "assert r.ok, r.to_json()\n"
        # VmHWM, unlike ru_maxrss, is not inherited from the forking parent.
        "status = open('/proc/self/status').read()\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1)) * 1024)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak = int(proc.stdout.strip())
    assert peak < 200_000_000, f"peak RSS {peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB input"
    frame = (archive / paths.frame_path(study, series, sop, 800)).read_bytes()
    _, payload = multipart.unwrap(frame)
    with open(source, "rb") as handle:
        handle.seek(size - 512 * 512 * 2)
        assert payload == handle.read()


def test_stdin_bytes_from_memory(tmp_path: Path) -> None:
    source = get_testdata_file("MR_small.dcm")
    archive = tmp_path / "archive"
    with open(source, "rb") as stdin:
        proc = subprocess.run(
            [*DWA, "convert", "-", "-o", str(archive), "-q"],
            stdin=stdin,
            capture_output=True,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    assert b"1 converted" in proc.stdout


def test_gzip_compressed_inputs(tmp_path: Path) -> None:
    import gzip

    source = Path(get_testdata_file("CT_small.dcm"))
    packed = tmp_path / "ct.dcm.gz"
    packed.write_bytes(gzip.compress(source.read_bytes()))
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(source.read_bytes())[:500])
    result = convert(tmp_path / "archive", packed, broken)
    assert result.counts["converted"] == 1  # type: ignore[attr-defined]
    [failure] = result.failures  # type: ignore[attr-defined]
    assert failure.name == str(broken) and failure.reason.startswith("bad gzip data")


def test_a_dead_writers_temporaries_go_by_the_end_of_the_run(
    tmp_path: Path, make_instance: MakeInstance
) -> None:
    """A worker killed during a run (its inputs converted again elsewhere) leaves its
    temporary files; the run removes them once it is done, a live writer's stay."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    archive = tmp_path / "archive"
    tmp = archive / paths.WORK_DIR / "tmp"
    left = tmp / f"w-{int(dead.stdout)}-1"
    live = tmp / f"w-{os.getpid()}-1"

    def plant(_outcome: object) -> None:  # during the run, after its start-up sweep
        tmp.mkdir(parents=True, exist_ok=True)
        left.write_bytes(b"half a frame")
        live.write_bytes(b"")

    study, series = generate_uid(), generate_uid()
    inputs = [str(make_instance(study=study, series=series, instance_number=n)) for n in (1, 2)]
    assert Converter(archive, ConvertOptions(workers=1)).convert(inputs, on_outcome=plant).ok
    assert not left.exists() and live.exists()


def test_a_worker_killed_mid_run_the_run_completes(tmp_path: Path) -> None:
    """A worker killed from outside (the out-of-memory killer) costs its chunks
    a rerun on a new pool; the run ends as a run on one core."""
    ct = tmp_path / "ct"
    write_ct_series(ct, slices=48, rows=64, columns=64, seed=7)
    Converter(tmp_path / "one-core", ConvertOptions(workers=1)).convert([str(ct)])
    killed: list[int] = []
    seen: list[InstanceOutcome] = []

    def kill_once(outcome: InstanceOutcome) -> None:
        if not killed:  # the first outcome is in: the run is under way
            killed.append(multiprocessing.active_children()[0].pid or 0)
            os.kill(killed[0], signal.SIGKILL)
        seen.append(outcome)

    result = Converter(tmp_path / "archive", ConvertOptions(workers=2)).convert(
        [str(ct)], on_outcome=kill_once
    )
    assert killed and result.ok and len(seen) == 48
    # What the dead worker stored before it died, the rerun finds: ``unchanged``.
    assert result.counts["converted"] + result.counts["unchanged"] == 48
    assert tree(tmp_path / "archive") == tree(tmp_path / "one-core")


def test_an_input_that_kills_its_worker_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ct = tmp_path / "ct"
    write_ct_series(ct, slices=40, rows=64, columns=64, seed=3)
    culprit = sorted(ct.iterdir())[17]
    stored = task.store_instance

    def crash_on_culprit(archive: Any, options: Any, parsed: Any, **kwargs: Any) -> Any:
        if parsed.name == str(culprit):
            os._exit(1)  # a crash in native code, in the worker forked from here
        return stored(archive, options, parsed, **kwargs)

    monkeypatch.setattr(task, "store_instance", crash_on_culprit)
    result = Converter(tmp_path / "archive", ConvertOptions(workers=2)).convert([str(ct)])
    assert [(o.name, o.reason) for o in result.failures] == [
        (str(culprit), f"not converted: {LOST_REASON}")
    ]
    assert result.counts["converted"] + result.counts["unchanged"] == 39
    monkeypatch.undo()
    culprit.unlink()
    Converter(tmp_path / "one-core", ConvertOptions(workers=1)).convert([str(ct)])
    assert tree(tmp_path / "archive") == tree(tmp_path / "one-core")


def _new_study(make_instance: MakeInstance) -> Path:
    return make_instance(study=generate_uid(), series=generate_uid())


def _indexed_studies(archive: Path) -> set[str]:
    with open_archive(str(archive)) as opened, QidoIndex(opened) as index:
        return {study for study in opened.studies() if index.study_row(study) is not None}


def test_a_run_here_leaves_listing_and_indexing_to_its_workers(
    tmp_path: Path, make_instance: MakeInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its workers list and index each study where this process reads: the
    run does not read every study's documents again at its end."""
    archive = tmp_path / "archive"
    convert(archive, _new_study(make_instance))
    Catalog(open_archive(str(archive))).rebuild_index()  # as dwa index does
    after: list[str] = []
    for name in ("studies_moved", "index_studies"):
        real = getattr(Catalog, name)

        def noted(self: Catalog, *args: Any, real: Any = real, name: str = name, **kw: Any) -> Any:
            after.append(name)
            return real(self, *args, **kw)

        monkeypatch.setattr(Catalog, name, noted)
    inputs = [_new_study(make_instance) for _ in range(3)]
    result = Converter(archive, ConvertOptions(workers=2)).convert([str(i) for i in inputs])
    assert result.counts["converted"] == 3  # type: ignore[attr-defined]
    assert after == []
    studies = {pydicom.dcmread(i).StudyInstanceUID for i in inputs}
    assert studies < _indexed_studies(archive)
    listed = {row["0020000D"]["Value"][0] for row in read_json_gz(archive / paths.STUDIES_INDEX)}
    assert studies < listed


class _IndexMadeMeanwhile:
    """Runs the tasks here; an index made from the archive as it was before the
    reduce (its studies not yet settled, so missing) appears only once the
    reduce's tasks ran without one: as a ``dwa serve`` starting meanwhile can
    make one."""

    workers = 1
    local = True

    def __init__(self, archive: Path, scratch: Path) -> None:
        self.archive, self.scratch = archive, scratch

    def map(self, task, items, lost):  # type: ignore[no-untyped-def]
        if getattr(task, "func", None) is not settle_studies:
            return [task(item) for item in items]
        shutil.copytree(self.archive, self.scratch)
        Catalog(open_archive(str(self.scratch))).rebuild_index()
        done = [task(item) for item in items]
        made = self.scratch / INDEX_PATH
        os.replace(made, self.archive / INDEX_PATH)
        return done


def test_an_index_made_during_the_run_gets_its_studies(
    tmp_path: Path, make_instance: MakeInstance
) -> None:
    archive = tmp_path / "archive"
    convert(archive, _new_study(make_instance))
    inputs = [_new_study(make_instance) for _ in range(2)]
    runner = _IndexMadeMeanwhile(archive, tmp_path / "then")
    Converter(archive, ConvertOptions(), runner=runner).convert([str(i) for i in inputs])
    studies = {pydicom.dcmread(i).StudyInstanceUID for i in inputs}
    with open_archive(str(tmp_path / "then")) as then, QidoIndex(then) as missing:
        assert all(missing.study_row(study) is None for study in studies)  # the index as made
    assert studies < _indexed_studies(archive)
