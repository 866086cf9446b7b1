"""A 300-slice CT study downloaded as application/zip from a real `dwa serve`:
the server's memory stays flat while ~160 MB stream through it."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.demo.samples import write_ct_series

SLICES = 300


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


@pytest.mark.slow
def test_zip_download_streams_with_flat_memory(tmp_path: Path) -> None:
    files = write_ct_series(tmp_path / "source", slices=SLICES)
    source_bytes = sum(f.stat().st_size for f in files)
    archive = tmp_path / "archive"
    assert Converter(archive, ConvertOptions()).convert([str(tmp_path / "source")]).ok
    study = next(p.name for p in (archive / "studies").iterdir() if p.is_dir())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "dicomweb_archive.cli", "serve", str(archive)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--no-access-log"], stderr=subprocess.DEVNULL
    )
    try:
        root = f"http://127.0.0.1:{port}/dicomweb"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{root}/studies").raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        before = _memory_kib(server.pid, "VmRSS")
        received = io.BytesIO()
        with httpx.stream(
            "GET", f"{root}/studies/{study}", params={"accept": "application/zip"}, timeout=120
        ) as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers  # streamed as produced
            for chunk in response.iter_bytes():
                received.write(chunk)
        peak = _memory_kib(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=30)
    body = received.getvalue()
    assert len(body) > 0.95 * source_bytes
    with zipfile.ZipFile(io.BytesIO(body)) as bundle:
        assert len(bundle.namelist()) == SLICES
        assert bundle.testzip() is None
    # Flat: the peak is the start-up footprint plus a few instances, far below the body.
    growth_mib = (peak - before) / 1024
    assert growth_mib < 40, f"server grew by {growth_mib:.0f} MiB for {len(body) >> 20} MiB"
