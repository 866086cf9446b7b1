"""Every ``dwa`` command on an archive in a real S3 API (moto on loopback): each works
there or says clearly why not; nothing is ever written to a local folder named ``s3:``."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.cli.main import cli
from dicomweb_archive.model import multipart
from dicomweb_archive.store.base import files_under
from dicomweb_archive.store.directory import DirectoryStore
from dicomweb_archive.store.objectstore import ObjectStore
from tests.conftest import write_instance
from tests.objectstore import MotoServer
from tests.server.live import dwa_serve

DWA = [sys.executable, "-m", "dicomweb_archive.cli"]
SOURCES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_rle_2frame.dcm")


def _sources() -> list[str]:
    return [str(get_testdata_file(name)) for name in SOURCES]


def _files(store: Any) -> dict[str, bytes]:
    """The archive's published files (the manifest and studies/), by path."""
    names = [*files_under(store, "studies"), "manifest.json"]
    return {name: store.read(name) for name in names}


def test_commands_on_an_object_store_archive(
    s3_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    converted = runner.invoke(cli, ["convert", *_sources(), "-o", s3_url, "-q"])
    assert converted.exit_code == 0, converted.output
    assert f"-> {s3_url}" in converted.output
    assert list(tmp_path.iterdir()) == []  # never a local folder named s3:

    indexed = runner.invoke(cli, ["index", s3_url])
    assert indexed.exit_code == 0 and "indexed 3 studies" in indexed.output

    exported = runner.invoke(cli, ["export", s3_url, "-o", str(tmp_path / "p10")])
    assert exported.exit_code == 0 and "exported 3 instances, 0 failed" in exported.output

    transcoded = runner.invoke(cli, ["transcode", s3_url, "-q"])
    assert transcoded.exit_code == 0, transcoded.output
    store = ObjectStore(s3_url)
    assert any("/htj2k/" in name for name in files_under(store, "studies"))

    # Packing into the bucket is refused once, by name; packing out of it works.
    refused = runner.invoke(cli, ["pack", s3_url, "--all"])
    assert refused.exit_code == 2
    assert refused.stderr.count("packed studies live in local folders only") == 1
    packed = runner.invoke(cli, ["pack", s3_url, "--all", "-o", str(tmp_path / "packed")])
    assert packed.exit_code == 0, packed.output
    zips = sorted(str(p) for p in (tmp_path / "packed" / "studies").glob("*.zip"))
    assert len(zips) == 3
    into = s3_url.replace("/archive", "/unpacked")
    unpacked = runner.invoke(cli, ["unpack", into, *zips])
    assert unpacked.exit_code == 0, unpacked.output
    assert _files(ObjectStore(into)) == _files(store)


def test_dwa_serve_answers_from_the_bucket(s3_url: str) -> None:
    assert Converter(s3_url, ConvertOptions(workers=1)).convert(_sources()).ok
    with dwa_serve(s3_url) as (root, _):  # type: ignore[arg-type]
        studies = httpx.get(f"{root}/studies").json()
        assert len(studies) == 3
        ct = next(s for s in studies if s["00080061"]["Value"] == ["CT"])
        study = ct["0020000D"]["Value"][0]
        metadata = httpx.get(f"{root}/studies/{study}/metadata").json()
        frames = metadata[0]["7FE00010"]["BulkDataURI"]
        accept = {"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}
        whole = httpx.get(f"{frames}/1", headers=accept)
        assert whole.status_code == 200
        stored = ObjectStore(s3_url).read(frames.partition("/dicomweb/")[2] + "/1")
        assert whole.content == stored
        part = httpx.get(f"{frames}/1", headers={**accept, "Range": "bytes=100-1099"})
        assert part.status_code == 206 and part.content == stored[100:1100]
        headers, payload = multipart.unwrap(whole.content)
        assert len(payload) == 128 * 128 * 2 and "transfer-syntax" in headers["content-type"]
        thumbnail = httpx.get(f"{root}/studies/{study}/thumbnail")
        assert thumbnail.status_code == 200
        assert thumbnail.headers["content-type"] == "image/jpeg"


def _valid(store: ObjectStore) -> None:
    """Every committed instance is whole; every document parses."""
    names = list(files_under(store, "studies"))
    for name in names:
        if name.endswith("/metadata.gz") and "/instances/" in name:
            [meta] = orjson.loads(gzip.decompress(store.read(name)))
            if "7FE00010" in meta:
                frame = name.removesuffix("metadata.gz") + "frames/1"
                multipart.unwrap(store.read(frame))
        elif name.endswith(".gz"):
            orjson.loads(gzip.decompress(store.read(name)))


def test_a_killed_conversion_into_s3_is_completed_by_a_rerun(
    s3_server: MotoServer, s3_url: str, tmp_path: Path
) -> None:
    study, series = generate_uid(), generate_uid()
    inputs = tmp_path / "in"
    for n in range(30):
        write_instance(
            inputs, study=study, series=series, instance_number=n + 1, rows=128, columns=128
        )
    reference = tmp_path / "reference"
    assert Converter(reference, ConvertOptions(workers=1)).convert([str(inputs)]).ok
    store = ObjectStore(s3_url)
    for delay in (0.0, 0.4):
        command = [*DWA, "convert", str(inputs), "-o", s3_url, "-q", "-w", "2"]
        proc = subprocess.Popen(command, start_new_session=True, env=dict(os.environ))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            name.endswith("/metadata.gz") for name in files_under(store, "studies")
        ):
            time.sleep(0.02)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        _valid(store)
    result = Converter(s3_url, ConvertOptions(workers=2)).convert([str(inputs)])
    assert result.ok
    assert _files(store) == _files(DirectoryStore(reference))
