"""``python -m dicomweb_archive.demo FOLDER``: the real command, into a folder of the test's."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from pathlib import Path

import orjson

from dicomweb_archive import tags
from dicomweb_archive.demo.__main__ import BUNDLED
from dicomweb_archive.model import paths
from dicomweb_archive.types import first_value


def test_the_demo_converts_samples_and_shows_the_archive(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    # What an earlier run left is replaced; what else the folder holds is kept.
    (folder / "input").mkdir(parents=True)
    (folder / "input" / "stale.dcm").write_bytes(b"not DICOM")
    (folder / "notes.txt").write_text("mine")

    done = subprocess.run(
        [sys.executable, "-m", "dicomweb_archive.demo", str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (folder / "notes.txt").read_text() == "mine"
    assert not (folder / "input" / "stale.dcm").exists()

    archive = folder / "archive"
    files = 120 + len(BUNDLED)
    assert f"converting {files} files into {archive}" in done.stdout
    assert f"  {files} converted, 0 updated, 0 failed" in done.stdout
    assert "failed:" not in done.stdout

    rows = orjson.loads(gzip.decompress((archive / paths.STUDIES_INDEX).read_bytes()))
    assert f"\n{len(rows)} studies in {archive} (" in done.stdout
    modalities = {first_value(r, tags.ModalitiesInStudy): r for r in rows}
    ct = modalities["CT"]
    assert first_value(ct, tags.NumberOfStudyRelatedInstances) == 120
    assert {"CT", "MR", "SR", "RTDOSE"} <= set(modalities)
    study = first_value(ct, tags.StudyInstanceUID)
    assert re.search(rf"CT +120 instances  studies/{re.escape(study)}\n", done.stdout)

    # Every path shown is there, with the size shown.
    shown = re.findall(r"^  (studies/\S+)  \(([\d,]+) bytes\)$", done.stdout, re.MULTILINE)
    assert len(shown) == 8
    for relative, size in shown:
        assert (archive / relative).stat().st_size == int(size.replace(",", "")), relative
    assert f"dwa serve {archive}" in done.stdout
