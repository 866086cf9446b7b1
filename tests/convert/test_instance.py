"""store_instance: one instance into the archive (convert and STOW-RS), whole or not at all."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from dicomweb_archive import Converter
from dicomweb_archive.convert.converter import ConversionResult
from dicomweb_archive.convert.instance import store_instance
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.errors import DuplicateInstanceError, MalformedDicomError
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.p10.reader import read_instance
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.manifest import ensure
from dicomweb_archive.store.packing import pack_study
from dicomweb_archive.store.staging import STAGING_DIR
from tests.conftest import read_json_gz, snapshot, write_instance

OPTIONS = ConvertOptions(workers=1)
OVERWRITE = ConvertOptions(workers=1, on_duplicate="overwrite")


def _root(archive: Archive) -> Path:
    return Path(archive.store.url)


@pytest.fixture
def archive(tmp_path: Path) -> Archive:
    archive = open_archive(tmp_path / "archive")
    ensure(archive.store, OPTIONS.archive_options())
    return archive


def _store(archive: Archive, source: Path | bytes, options: ConvertOptions = OPTIONS) -> object:
    data = source if isinstance(source, bytes) else source.read_bytes()
    return store_instance(archive, options, read_instance(io.BytesIO(data), "input.dcm"))


def test_new_same_and_changed_instance(tmp_path: Path, archive: Archive) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    source = write_instance(tmp_path, study=study, series=series, sop=sop, frames=3)
    first = store_instance(archive, OPTIONS, read_instance(io.BytesIO(source.read_bytes()), "a"))
    assert (first.status, first.frames, first.sop_instance_uid) == ("converted", 3, sop)
    assert (first.study_instance_uid, first.series_instance_uid) == (study, series)
    root = _root(archive)
    [meta] = read_json_gz(root / paths.instance_metadata(study, series, sop))
    assert meta["7FE00010"]["BulkDataURI"] == paths.pixel_data_uri(series, sop)
    assert meta["00083002"]["Value"] == ["1.2.840.10008.1.2.1"]
    info = read_json_gz(root / paths.instance_info(study, series, sop))
    assert info["pixelData"]["numberOfFrames"] == 3
    assert info["source"]["name"] == "a"

    again = store_instance(archive, OPTIONS, read_instance(io.BytesIO(source.read_bytes()), "b"))
    assert again.status == "unchanged"

    fewer = write_instance(tmp_path / "fewer", study=study, series=series, sop=sop, frames=1)
    before = snapshot(root)
    with pytest.raises(DuplicateInstanceError, match="with other content"):
        _store(archive, fewer)  # the default policy rejects, changing nothing
    assert snapshot(root) == before
    updated = _store(archive, fewer, OVERWRITE)
    assert updated.status == "updated"  # type: ignore[attr-defined]
    frames = root / paths.instance_dir(study, series, sop) / "frames"
    assert sorted(p.name for p in frames.iterdir()) == ["1"]


def test_bulk_data_is_stored_once_under_its_digest(tmp_path: Path, archive: Archive) -> None:
    study, series = generate_uid(), generate_uid()
    for number in (1, 2):
        _store(
            archive,
            write_instance(
                tmp_path, study=study, series=series, instance_number=number, private_bytes=300
            ),
        )
    ds = pydicom.dcmread(next(tmp_path.glob("*.dcm")))
    value = ds[0x00111001].value
    digest = hashlib.sha256(value).hexdigest()
    stored = _root(archive) / paths.bulkdata_path(study, digest)
    _, payload = multipart.unwrap(stored.read_bytes())
    assert payload == value
    assert len(list((_root(archive) / paths.study_dir(study) / "bulkdata").rglob("*"))) == 2


def test_raw_frames_are_stored_bare(tmp_path: Path) -> None:
    options = ConvertOptions(workers=1, frames="raw")
    archive = open_archive(tmp_path / "archive")
    ensure(archive.store, options.archive_options())
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    source = write_instance(tmp_path, study=study, series=series, sop=sop, rows=4, columns=4)
    _store(archive, source, options)
    frame = _root(archive) / paths.frame_path(study, series, sop, 1)
    assert frame.read_bytes() == pydicom.dcmread(source).PixelData


def test_a_payload_holding_the_boundary_is_refused(tmp_path: Path, archive: Archive) -> None:
    source = write_instance(tmp_path, study=generate_uid(), series=generate_uid())
    ds = pydicom.dcmread(source)
    delimiter = f"\r\n--{multipart.BOUNDARY}".encode("ascii")
    pixels = bytearray(ds.PixelData)
    pixels[100 : 100 + len(delimiter)] = delimiter
    ds.PixelData = bytes(pixels)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(MalformedDicomError, match="multipart boundary"):
        _store(archive, buffer.getvalue())


def test_a_packed_study_is_unpacked_first(tmp_path: Path, archive: Archive) -> None:
    study, series = generate_uid(), generate_uid()
    _store(archive, write_instance(tmp_path, study=study, series=series, instance_number=1))
    pack_study(archive, study, remove=True)
    assert archive.is_packed(study)
    outcome = _store(
        archive, write_instance(tmp_path, study=study, series=series, instance_number=2)
    )
    assert outcome.status == "converted"  # type: ignore[attr-defined]
    assert not archive.is_packed(study)
    instances = _root(archive) / paths.series_dir(study, series) / "instances"
    assert len(list(instances.iterdir())) == 2


DWA = [sys.executable, "-m", "dicomweb_archive.cli"]

FRAME = 64 * 64 * 2  # emri_small: ten 64×64 16-bit frames


def convert(
    archive: Path, *inputs: Path, workers: int = 1, replace: bool = False
) -> ConversionResult:
    """``replace``: the duplicates policy overwrites (instances replaced on purpose)."""
    options = ConvertOptions(workers=workers, on_duplicate="overwrite" if replace else None)
    return Converter(archive, options).convert([str(i) for i in inputs])


def emri(
    tmp_path: Path,
    name: str,
    frames: int = 10,
    edit: dict[int, bytes] | None = None,
    sop: str | None = None,
) -> Path:
    """emri_small, keeping ``frames`` frames, with bytes put at pixel data offsets
    (and another SOP Instance UID when given)."""
    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    if sop is not None:
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop
    pixels = bytearray(ds.PixelData[: frames * FRAME])
    for offset, data in (edit or {}).items():
        pixels[offset : offset + len(data)] = data
    ds.PixelData = bytes(pixels)
    ds.NumberOfFrames = frames
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


def only_instance(archive: Path) -> Path:
    [metadata] = archive.glob("studies/*/series/*/instances/*/metadata.gz")
    return metadata.parent


def stored_frames(instance: Path) -> dict[int, bytes]:
    return {int(p.name): p.read_bytes() for p in (instance / "frames").iterdir()}


def number_of_frames(instance: Path) -> int:
    [meta] = orjson.loads(gzip.decompress((instance / paths.METADATA).read_bytes()))
    return int(meta["00280008"]["Value"][0])


def served(archive: Path) -> dict[str, bytes]:
    return {name: data for name, (_, data) in snapshot(archive).items()}


def test_a_frame_holding_the_boundary_changes_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    assert convert(archive, emri(tmp_path, "a.dcm")).ok
    before = snapshot(archive)
    boundary = b"\r\n--" + multipart.BOUNDARY.encode()
    bad = emri(tmp_path, "b.dcm", edit={0: b"\x01\x02\x03\x04", 4 * FRAME + 10: boundary})
    result = convert(archive, bad)
    assert result.counts["failed"] == 1
    assert "frame 5 contains the archive's multipart boundary" in str(result.failures[0].reason)
    assert snapshot(archive) == before
    assert not (archive / STAGING_DIR).exists() or not any((archive / STAGING_DIR).iterdir())


def test_a_new_instance_of_a_stored_series_failing_changes_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    assert convert(archive, emri(tmp_path, "a.dcm")).ok
    before = snapshot(archive)
    boundary = b"\r\n--" + multipart.BOUNDARY.encode()
    bad = emri(tmp_path, "b.dcm", edit={4 * FRAME + 10: boundary}, sop="1.2.3.4.5.6.7")
    result = convert(archive, bad)
    assert result.counts["failed"] == 1
    assert "frame 5 contains the archive's multipart boundary" in str(result.failures[0].reason)
    assert snapshot(archive) == before
    assert not list(archive.glob("studies/*/series/*/instances/1.2.3.4.5.6.7"))
    assert not (archive / STAGING_DIR).exists() or not any((archive / STAGING_DIR).iterdir())


@pytest.mark.parametrize("damage", ["boundary", "item tag"])
def test_a_bad_fragment_changes_nothing(tmp_path: Path, damage: str) -> None:
    source = pydicom.dcmread(get_testdata_file("emri_small_jpeg_2k_lossless.dcm"))
    good = tmp_path / "good.dcm"
    source.save_as(good)
    pixel = bytearray(source.PixelData)
    items = [i for i in range(0, len(pixel) - 3, 2) if pixel[i : i + 4] == b"\xfe\xff\x00\xe0"]
    # Frame 1's codestream changed; the sixth fragment holds the boundary, or
    # its item tag is broken.
    pixel[items[1] + 8 + 20] ^= 0xFF
    if damage == "boundary":
        boundary = b"\r\n--" + multipart.BOUNDARY.encode()
        pixel[items[6] + 8 + 10 : items[6] + 8 + 10 + len(boundary)] = boundary
    else:
        pixel[items[6] : items[6] + 4] = b"\x01\x02\x03\x04"
    source.PixelData = bytes(pixel)
    bad = tmp_path / "bad.dcm"
    source.save_as(bad)
    archive = tmp_path / "archive"
    assert convert(archive, good).ok
    before = snapshot(archive)
    result = convert(archive, bad)
    assert result.counts["failed"] == 1
    assert snapshot(archive) == before


def test_a_failed_first_input_leaves_no_files(tmp_path: Path) -> None:
    boundary = b"\r\n--" + multipart.BOUNDARY.encode()
    bad = emri(tmp_path, "bad.dcm", edit={4 * FRAME + 10: boundary})
    archive = tmp_path / "archive"
    assert convert(archive, bad).counts["failed"] == 1
    assert not (archive / "studies").exists() or not list((archive / "studies").rglob("*/*/*"))
    left = [p for p in archive.rglob("*") if p.is_file() and "locks" not in p.parts]
    kept = ("manifest.json", "index.json.gz")
    # SQLite's files, its rollback journal emptied (not deleted) after each transaction.
    empty_journal = [p for p in left if p.name.endswith(".sqlite-journal") and not p.stat().st_size]
    assert all(p.name in kept or p.suffix == ".sqlite" or p in empty_journal for p in left), left


@pytest.mark.parametrize(("first", "second"), [(10, 3), (3, 10)])
def test_a_new_frame_count_replaces_the_frames(tmp_path: Path, first: int, second: int) -> None:
    archive = tmp_path / "archive"
    convert(archive, emri(tmp_path, "a.dcm", first))
    assert convert(archive, emri(tmp_path, "b.dcm", second)).counts["failed"] == 1
    result = convert(archive, emri(tmp_path, "b.dcm", second), replace=True)
    assert result.counts["updated"] == 1
    fresh = tmp_path / "fresh"
    convert(fresh, emri(tmp_path, "b.dcm", second))
    assert served(archive) == served(fresh)


def test_one_instance_twice_in_one_run_stays_consistent(tmp_path: Path) -> None:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork for a quick pool")
    ten, two = emri(tmp_path, "ten.dcm", 10), emri(tmp_path, "two.dcm", 2, edit={0: b"\x07"})
    for round_ in range(12):
        archive = tmp_path / f"archive{round_}"
        result = convert(archive, ten, two, workers=2, replace=True)
        assert result.ok
        instance = only_instance(archive)
        frames = stored_frames(instance)
        assert sorted(frames) == list(range(1, number_of_frames(instance) + 1))
        winner = ten if len(frames) == 10 else two
        pixels = pydicom.dcmread(winner).PixelData
        for number, body in frames.items():
            assert pixels[(number - 1) * FRAME : number * FRAME] in body


def _convert_in_process(archive: str, source: str, queue: multiprocessing.Queue[str]) -> None:
    result = Converter(archive, ConvertOptions(workers=1)).convert([source])
    queue.put(",".join(sorted(s for s, n in result.counts.items() if n)))


def test_identical_concurrent_inputs_are_never_replaced(tmp_path: Path) -> None:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork")
    source = emri(tmp_path, "a.dcm")
    copy = tmp_path / "copy.dcm"
    copy.write_bytes(source.read_bytes())
    context = multiprocessing.get_context("fork")
    for round_ in range(6):
        archive = str(tmp_path / f"archive{round_}")
        queue: multiprocessing.Queue[str] = context.Queue()
        workers = [
            context.Process(target=_convert_in_process, args=(archive, str(path), queue))
            for path in (source, copy)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        statuses = sorted(queue.get(timeout=5) for _ in workers)
        assert statuses == ["converted", "unchanged"], statuses
    assert os.path.exists(archive)


def _versions(tmp_path: Path, count: int) -> tuple[Path, Path]:
    """Two versions of the same instances: other frames, other frame counts."""
    study, series = generate_uid(), generate_uid()
    first, second = tmp_path / "first", tmp_path / "second"
    for n in range(count):
        sop = generate_uid()
        common = {"study": study, "series": series, "sop": sop, "rows": 128, "columns": 128}
        write_instance(first, instance_number=n + 1, frames=3, **common)  # type: ignore[arg-type]
        write_instance(second, instance_number=n + 2, frames=2, **common)  # type: ignore[arg-type]
    return first, second


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_killed_replacement_is_finished_by_the_rerun(tmp_path: Path, seed: int) -> None:
    first, second = _versions(tmp_path, 40)
    reference = tmp_path / "reference"
    convert(reference, second)
    archive = tmp_path / "archive"
    convert(archive, first)
    delays = random.Random(seed)
    staging = archive / STAGING_DIR
    # Kill runs until two were killed while replacing (a replacement staged): a
    # run that finished first is undone and tried again, so the test never
    # passes without the kill it is about, however fast or slow the machine.
    # (A replacement of these 40 instances takes a few tens of ms: the kill
    # comes within that after the first staged file is seen, and attempts are
    # many, each one cheap.)
    interrupted = 0
    for _attempt in range(40):
        proc = subprocess.Popen(
            [*DWA, "convert", str(second), "-o", str(archive), "-q", "-w", "2"]
            + ["--on-duplicate", "overwrite"],
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if staging.exists() and any(staging.iterdir()):
                break  # replacing has begun
            time.sleep(0.002)
        time.sleep(delays.uniform(0.0, 0.04))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if staging.exists() and any(staging.iterdir()):
            interrupted += 1
            if interrupted == 2:
                break
        elif proc.returncode == 0:
            assert convert(archive, first, replace=True).ok
    assert interrupted, "no run was killed while replacing"
    result = convert(archive, second, workers=2, replace=True)
    assert result.ok
    assert served(archive) == served(reference)
    for metadata in archive.glob("studies/*/series/*/instances/*/metadata.gz"):
        instance = metadata.parent
        assert sorted(stored_frames(instance)) == list(range(1, number_of_frames(instance) + 1))
    assert not any((archive / STAGING_DIR).iterdir())


@pytest.mark.parametrize("size", [178, 190, 210, 230])
def test_a_full_disk_while_replacing_keeps_the_instance(
    tmp_path: Path, size: int, small_filesystem: Callable[[int], Path]
) -> None:
    archive = small_filesystem(size * 1024) / "archive"
    assert convert(archive, emri(tmp_path, "a.dcm")).ok
    before = snapshot(archive)
    changed = emri(tmp_path, "b.dcm", edit={n * FRAME: b"\x09\x09" for n in range(10)})
    proc = subprocess.run(
        [*DWA, "convert", str(changed), "-o", str(archive), "--json", "-w", "1"],
        capture_output=True,
        check=False,
    )
    assert b"Traceback" not in proc.stderr and b"internal error" not in proc.stderr
    instance = only_instance(archive)
    assert sorted(stored_frames(instance)) == list(range(1, number_of_frames(instance) + 1))
    if proc.returncode != 0:
        assert "no space left on device" in proc.stderr.decode()
        if orjson.loads(proc.stdout)["failed"]:
            assert snapshot(archive) == before  # the instance as it was
    assert not any((archive / STAGING_DIR).iterdir()) if (archive / STAGING_DIR).exists() else True
    assert list((archive / paths.WORK_DIR / "tmp").iterdir()) == []


# -- the duplicates policy ---------------------------------------------------------


def _study_uids(archive: Archive, *written: str) -> list[str]:
    """The study list once the studies ``written`` are refreshed (what a writer asks)."""
    Catalog(archive).refresh(written)
    return [
        str(row["0020000D"]["Value"][0]) for row in archive.read_json_gz("studies/index.json.gz")
    ]


def test_a_sop_instance_uid_under_another_series_is_rejected(
    tmp_path: Path, archive: Archive
) -> None:
    study, sop = generate_uid(), generate_uid()
    first = write_instance(tmp_path / "a", study=study, series=generate_uid(), sop=sop)
    moved = write_instance(tmp_path / "b", study=study, series=generate_uid(), sop=sop)
    _store(archive, first)
    before = snapshot(_root(archive))
    with pytest.raises(DuplicateInstanceError, match=f"already in study {study}, series"):
        _store(archive, moved)
    assert snapshot(_root(archive)) == before
    assert _store(archive, first).status == "unchanged"  # type: ignore[attr-defined]


def test_overwrite_moves_the_instance_to_its_new_study(tmp_path: Path, archive: Archive) -> None:
    old_study, new_study, sop = generate_uid(), generate_uid(), generate_uid()
    old_series, new_series = generate_uid(), generate_uid()
    kept = write_instance(tmp_path / "kept", study=old_study, series=old_series)
    first = write_instance(tmp_path / "a", study=old_study, series=old_series, sop=sop)
    moved = write_instance(tmp_path / "b", study=new_study, series=new_series, sop=sop)
    for source in (kept, first):
        _store(archive, source)
    pack_study(archive, old_study, remove=True)
    outcome = _store(archive, moved, OVERWRITE)
    assert outcome.status == "updated"  # type: ignore[attr-defined]
    assert f"stored in study {old_study}" in outcome.warnings[0]  # type: ignore[attr-defined]
    assert archive.exists(paths.instance_metadata(new_study, new_series, sop))
    assert not archive.exists(paths.instance_dir(old_study, old_series, sop))
    assert archive.is_packed(old_study)  # the study it left stays packed, one instance less
    rows = archive.read_json_gz(paths.instances_index(old_study, old_series))
    assert [r["00080018"]["Value"][0] for r in rows] == [pydicom.dcmread(kept).SOPInstanceUID]
    assert sorted(_study_uids(archive, new_study)) == sorted([old_study, new_study])
    # Back again: the study left without instances disappears.
    back = _store(archive, first, OVERWRITE)
    assert back.status == "updated"  # type: ignore[attr-defined]
    assert not archive.has_study(new_study)
    assert new_study not in _study_uids(archive, old_study)


def test_the_manifest_sets_the_archive_policy(tmp_path: Path, archive: Archive) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    _store(archive, write_instance(tmp_path / "a", study=study, series=series, sop=sop))
    changed = write_instance(tmp_path / "b", study=study, series=series, sop=sop, frames=2)
    manifest = _root(archive) / paths.MANIFEST
    document = orjson.loads(manifest.read_bytes())
    manifest.write_bytes(orjson.dumps({**document, "onDuplicate": "overwrite"}))
    assert _store(archive, changed).status == "updated"  # type: ignore[attr-defined]
    # A writer's own choice comes first.
    reject = ConvertOptions(workers=1, on_duplicate="reject")
    with pytest.raises(DuplicateInstanceError):
        _store(archive, write_instance(tmp_path / "c", study=study, series=series, sop=sop), reject)
