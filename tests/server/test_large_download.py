"""A 300-slice CT study downloaded as application/zip from a real `dwa serve`:
the server's memory stays flat while ~160 MB stream through it."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import pytest

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.demo.samples import write_ct_series
from tests.server.live import dwa_serve, memory_kib

SLICES = 300


@pytest.mark.slow
def test_zip_download_streams_with_flat_memory(tmp_path: Path) -> None:
    files = write_ct_series(tmp_path / "source", slices=SLICES)
    source_bytes = sum(f.stat().st_size for f in files)
    archive = tmp_path / "archive"
    assert Converter(archive, ConvertOptions()).convert([str(tmp_path / "source")]).ok
    study = next(p.name for p in (archive / "studies").iterdir() if p.is_dir())
    with dwa_serve(archive) as (root, pid):
        before = memory_kib(pid)
        received = io.BytesIO()
        with httpx.stream(
            "GET", f"{root}/studies/{study}", params={"accept": "application/zip"}, timeout=120
        ) as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers  # streamed as produced
            for chunk in response.iter_bytes():
                received.write(chunk)
        peak = memory_kib(pid, "VmHWM")
    body = received.getvalue()
    assert len(body) > 0.95 * source_bytes
    with zipfile.ZipFile(io.BytesIO(body)) as bundle:
        assert len(bundle.namelist()) == SLICES
        assert bundle.testzip() is None
    # Flat: the peak is the start-up footprint plus a few instances, far below the body.
    growth_mib = (peak - before) / 1024
    assert growth_mib < 40, f"server grew by {growth_mib:.0f} MiB for {len(body) >> 20} MiB"
