"""Transcoding an archive to HTJ2K: alternates, primary replacement, idempotency."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions, uids
from dicomweb_archive.codec import codestream
from dicomweb_archive.codec.decode import ImagePixel, decode_frame
from dicomweb_archive.export.p10 import export_instance
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.packing import pack_study
from dicomweb_archive.transcode.transcoder import (
    TranscodeOptions,
    Transcoder,
    TranscodeResult,
)
from dicomweb_archive.types import InstanceKey
from tests.conftest import read_json_gz, snapshot, write_instance

SOURCES = ("CT_small.dcm", "SC_rgb_rle_2frame.dcm", "OBXXXX1A.dcm", "rtdose.dcm")
HTJ2K_PART = "image/jphc; transfer-syntax=1.2.840.10008.1.2.4.202"


def convert(archive: Path, *inputs: str | Path, **options: Any) -> None:
    result = Converter(archive, ConvertOptions(workers=1, **options)).convert(map(str, inputs))
    assert result.ok, result.failures


def transcode(archive: Path, **options: Any) -> TranscodeResult:
    return Transcoder(archive, TranscodeOptions(workers=1, **options)).transcode()


def instances(archive: Path) -> dict[str, InstanceKey]:
    keys = list(open_archive(archive).instance_keys())
    by_name = {}
    for key in keys:
        info = read_json_gz(archive / paths.instance_info(*key))
        by_name[info["source"]["name"]] = key
    return by_name


def decoded_frames(archive: Path, key: InstanceKey, folder: str = "frames") -> list[np.ndarray]:
    root = archive / paths.instance_dir(*key)
    [meta] = read_json_gz(root / "metadata.gz")
    image = ImagePixel.from_metadata(meta)
    out = []
    for number in range(1, image.number_of_frames + 1):
        headers, payload = multipart.unwrap((root / folder / str(number)).read_bytes())
        syntax = headers["content-type"].split("transfer-syntax=")[1]
        if syntax != meta["00083002"]["Value"][0] and folder == "frames":
            raise AssertionError("frame and metadata disagree on the transfer syntax")
        out.append(decode_frame(payload, syntax, image).pixels)
    return out


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    convert(root, *(get_testdata_file(name) for name in SOURCES))
    return root


def test_alternate_adds_htj2k_frames_and_changes_nothing_else(archive: Path) -> None:
    before = snapshot(archive)
    keys = instances(archive)
    originals = {
        name: decoded_frames(archive, key) for name, key in keys.items() if name != "rtdose.dcm"
    }
    result = transcode(archive)
    assert result.counts == {"transcoded": 3, "skipped": 1}
    [skipped] = result.skipped
    assert skipped.key == keys["rtdose.dcm"] and "Bits Allocated 32" in str(skipped.reason)
    after = snapshot(archive)
    changed = {p for p in after if before.get(p) != after[p]}
    assert all("/htj2k/" in p or p.endswith("info.json.gz") for p in changed)
    for name, frames in originals.items():
        key = keys[name]
        alternate = decoded_frames(archive, key, "htj2k")
        assert all(np.array_equal(a, b) for a, b in zip(alternate, frames, strict=True))
        first = paths.htj2k_frame_path(*key, 1)
        headers, payload = multipart.unwrap((archive / first).read_bytes())
        assert headers["content-type"] == HTJ2K_PART
        assert headers["content-location"] == first
        assert payload.startswith(b"\xff\x4f\xff\x51") and codestream.parse(payload).has_tlm
        info = read_json_gz(archive / paths.instance_info(*key))
        record = info["htj2k"]
        assert record["mode"] == "alternate" and record["path"] == "htj2k"
        assert record["transferSyntaxUID"] == uids.HTJ2KLosslessRPCL and not record["lossy"]
        assert record["numberOfFrames"] == len(frames)
    rgb = read_json_gz(archive / paths.instance_info(*_key(keys["SC_rgb_rle_2frame.dcm"])))
    assert rgb["htj2k"]["photometricInterpretation"] == "YBR_RCT"
    assert rgb["htj2k"]["source"]["photometricInterpretation"] == "RGB"

    time.sleep(0.01)
    again = transcode(archive)
    assert again.counts == {"unchanged": 3, "skipped": 1}
    assert snapshot(archive) == after
    # Converting the same files again keeps the alternates and their record.
    convert(archive, *(get_testdata_file(name) for name in SOURCES))
    assert snapshot(archive) == after


def _key(key: InstanceKey) -> tuple[str, str, str]:
    return tuple(key)


def test_primary_replaces_frames_and_metadata_consistently(archive: Path) -> None:
    keys = instances(archive)
    originals = {
        name: decoded_frames(archive, key) for name, key in keys.items() if name != "rtdose.dcm"
    }
    result = transcode(archive, mode="primary")
    assert result.counts == {"transcoded": 3, "skipped": 1}
    assert sorted(result.studies) == sorted(
        {k.study_instance_uid for n, k in keys.items() if n != "rtdose.dcm"}
    )
    for name, frames in originals.items():
        key = keys[name]
        root = archive / paths.instance_dir(*_key(key))
        assert not (root / "htj2k").exists()
        current = decoded_frames(archive, key)
        assert all(np.array_equal(a, b) for a, b in zip(current, frames, strict=True))
        [meta] = read_json_gz(root / "metadata.gz")
        assert meta["00083002"]["Value"] == [uids.HTJ2KLosslessRPCL]
        assert meta["7FE00010"]["vr"] == "OB"
        series_meta = read_json_gz(
            archive / paths.series_metadata(key.study_instance_uid, key.series_instance_uid)
        )
        mine = [m for m in series_meta if m["00080018"]["Value"] == [key.sop_instance_uid]]
        assert mine == [meta]
        info = read_json_gz(root / "info.json.gz")
        assert info["transferSyntaxUID"] == uids.HTJ2KLosslessRPCL
        assert info["htj2k"]["mode"] == "primary" and info["htj2k"]["path"] == "frames"
        # The regenerated P10 file is HTJ2K, frames encapsulated, pixels unchanged.
        ds = pydicom.dcmread(io.BytesIO(export_instance(open_archive(archive), *_key(key))))
        assert ds.file_meta.TransferSyntaxUID == uids.HTJ2KLosslessRPCL
        assert ds.PhotometricInterpretation == meta["00280004"]["Value"][0]
        image = ImagePixel.from_metadata(meta)
        exported = list(generate_frames(ds.PixelData, number_of_frames=image.number_of_frames))
        for fragment, expected in zip(exported, frames, strict=True):
            decoded = decode_frame(fragment, uids.HTJ2KLosslessRPCL, image).pixels
            assert np.array_equal(decoded, expected)
    [rgb] = read_json_gz(archive / paths.instance_metadata(*_key(keys["SC_rgb_rle_2frame.dcm"])))
    assert rgb["00280004"]["Value"] == ["YBR_RCT"] and rgb["00280006"]["Value"] == [0]
    [palette] = read_json_gz(archive / paths.instance_metadata(*_key(keys["OBXXXX1A.dcm"])))
    assert palette["00280004"]["Value"] == ["PALETTE COLOR"] and "00281201" in palette

    after = snapshot(archive)
    time.sleep(0.01)
    assert transcode(archive, mode="primary").counts == {"unchanged": 3, "skipped": 1}
    assert transcode(archive).counts == {"unchanged": 3, "skipped": 1}
    # Converting the same sources again leaves the HTJ2K frames in place.
    convert(archive, *(get_testdata_file(name) for name in SOURCES))
    assert snapshot(archive) == after


def test_alternate_then_primary_reuses_the_alternate(archive: Path) -> None:
    key = instances(archive)["CT_small.dcm"]
    transcode(archive)
    alternate = multipart.unwrap((archive / paths.htj2k_frame_path(*_key(key), 1)).read_bytes())[1]
    assert transcode(archive, mode="primary").counts["transcoded"] == 3
    frame = multipart.unwrap((archive / paths.frame_path(*_key(key), 1)).read_bytes())[1]
    assert frame == alternate


def test_lossy_primary_sets_the_lossy_attributes(archive: Path) -> None:
    keys = instances(archive)
    assert transcode(archive, mode="primary", psnr=45).counts == {"transcoded": 3, "skipped": 1}
    [ct] = read_json_gz(archive / paths.instance_metadata(*_key(keys["CT_small.dcm"])))
    assert ct["00083002"]["Value"] == [uids.HTJ2K]
    assert ct["00282110"]["Value"] == ["01"]
    assert ct["00282114"]["Value"] == ["ISO_15444_15"]
    [ratio] = ct["00282112"]["Value"]
    assert ratio > 2
    [rgb] = read_json_gz(archive / paths.instance_metadata(*_key(keys["SC_rgb_rle_2frame.dcm"])))
    assert rgb["00280004"]["Value"] == ["YBR_ICT"]
    # Palette colour is only ever lossless.
    [palette] = read_json_gz(archive / paths.instance_metadata(*_key(keys["OBXXXX1A.dcm"])))
    assert palette["00083002"]["Value"] == [uids.HTJ2KLosslessRPCL]
    assert "00282110" not in palette or palette["00282110"]["Value"] != ["01"]
    frame = (archive / paths.frame_path(*_key(keys["CT_small.dcm"]), 1)).read_bytes()
    assert b"transfer-syntax=1.2.840.10008.1.2.4.203" in frame[:200]
    # Other settings do not transcode primary frames a second time.
    again = transcode(archive, mode="primary")
    assert again.counts == {"skipped": 4}


def test_a_frame_that_cannot_be_decoded_keeps_the_original(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    convert(archive, get_testdata_file("JPEG2000.dcm"), get_testdata_file("CT_small.dcm"))
    keys = instances(archive)
    target = archive / paths.frame_path(*_key(keys["JPEG2000.dcm"]), 1)
    body = target.read_bytes()
    headers, payload = multipart.unwrap(body)
    damaged = body.replace(payload, payload[:40] + b"\x00" * (len(payload) - 40))
    target.write_bytes(damaged)
    result = transcode(archive, mode="primary")
    assert result.counts == {"transcoded": 1, "failed": 1}
    [failure] = result.failures
    assert failure.key == keys["JPEG2000.dcm"]
    assert str(failure.reason).startswith("frame 1 cannot be decoded")
    root = archive / paths.instance_dir(*_key(keys["JPEG2000.dcm"]))
    assert target.read_bytes() == damaged and not (root / "htj2k").exists()
    assert "htj2k" not in read_json_gz(root / "info.json.gz")


def test_a_changed_source_drops_the_stale_alternate(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    source = write_instance(tmp_path / "in", study=study, series=series, sop=sop)
    convert(archive, source)
    transcode(archive)
    assert (archive / paths.htj2k_dir(study, series, sop)).is_dir()
    changed = write_instance(
        tmp_path / "in2", study=study, series=series, sop=sop, instance_number=7
    )
    convert(archive, changed, on_duplicate="overwrite")
    assert not (archive / paths.htj2k_dir(study, series, sop)).exists()
    assert "htj2k" not in read_json_gz(archive / paths.instance_info(study, series, sop))
    assert transcode(archive).counts == {"transcoded": 1}


def test_an_interrupted_primary_run_is_finished(archive: Path) -> None:
    key = instances(archive)["SC_rgb_rle_2frame.dcm"]
    transcode(archive)
    # What a run killed after its intent and one replaced frame leaves behind.
    info_path = archive / paths.instance_info(*_key(key))
    info = read_json_gz(info_path)
    info["htj2k"] = {**info["htj2k"], "mode": "primary", "path": "frames"}
    open_archive(archive).store.write_json_gz(paths.instance_info(*_key(key)), info)
    staged = multipart.unwrap((archive / paths.htj2k_frame_path(*_key(key), 1)).read_bytes())[1]
    frame = paths.frame_path(*_key(key), 1)
    store = open_archive(archive).store
    store.write(frame, multipart.header(HTJ2K_PART, frame), staged, multipart.TRAILER)
    result = transcode(archive, mode="alternate")  # whatever is asked, the run is finished
    assert result.counts["transcoded"] == 1
    [meta] = read_json_gz(archive / paths.instance_metadata(*_key(key)))
    assert meta["00083002"]["Value"] == [uids.HTJ2KLosslessRPCL]
    assert not (archive / paths.htj2k_dir(*_key(key))).exists()
    assert len(decoded_frames(archive, key)) == 2


def test_raw_frames_and_packed_studies(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    convert(archive, get_testdata_file("MR_small.dcm"), frames="raw")
    [key] = instances(archive).values()
    pack_study(open_archive(archive), key.study_instance_uid, remove=True)
    assert list(open_archive(archive).instance_keys()) == [key]
    assert transcode(archive).counts == {"transcoded": 1}
    bare = (archive / paths.htj2k_frame_path(*_key(key), 1)).read_bytes()
    assert bare.startswith(b"\xff\x4f\xff\x51")


def test_concurrent_primary_runs_agree(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    inputs = [
        write_instance(tmp_path / "in", study=study, series=series, instance_number=n, rows=64)
        for n in range(1, 9)
    ]
    archive = tmp_path / "archive"
    convert(archive, *inputs)
    originals = {k: decoded_frames(archive, k) for k in list(open_archive(archive).instance_keys())}
    command = [sys.executable, "-m", "dicomweb_archive.cli", "transcode", str(archive)]
    runs = [
        subprocess.Popen([*command, "--mode", "primary", "-w", "2", "-q"], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err.decode()
    for key, frames in originals.items():
        [meta] = read_json_gz(archive / paths.instance_metadata(*_key(key)))
        assert meta["00083002"]["Value"] == [uids.HTJ2KLosslessRPCL]
        assert not (archive / paths.htj2k_dir(*_key(key))).exists()
        assert np.array_equal(decoded_frames(archive, key)[0], frames[0])
    assert transcode(archive, mode="primary").counts == {"unchanged": 8}


def test_bytes_after_the_last_frame_keep_their_frames(tmp_path: Path) -> None:
    # MR_small_padded.dcm: 128 bytes after its frame, kept in info for export.
    source = Path(get_testdata_file("MR_small_padded.dcm"))
    archive = tmp_path / "archive"
    convert(archive, source)
    primary = transcode(archive, mode="primary")
    [skipped] = primary.skipped
    assert "bytes after the last frame" in str(skipped.reason)
    assert transcode(archive).counts == {"transcoded": 1}
    [key] = instances(archive).values()
    exported = pydicom.dcmread(io.BytesIO(export_instance(open_archive(archive), *key)))
    assert exported.PixelData == pydicom.dcmread(source).PixelData
