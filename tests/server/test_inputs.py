"""The stored files a generated answer is made from: measured, tagged, checked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

import dicomweb_archive
from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.server.inputs import Inputs, product
from dicomweb_archive.server.joined import ChangedWhileSent
from dicomweb_archive.store.archive import open_archive
from tests.conftest import write_instance
from tests.server.conftest import arrange


@pytest.fixture(params=["folders", "zips"])
def archive_root(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    study, series = generate_uid(), generate_uid()
    files = [
        write_instance(tmp_path / "in", study=study, series=series, instance_number=n)
        for n in (1, 2)
    ]
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([str(f) for f in files]).ok
    return arrange(root, str(request.param))


def _files(root: Path) -> tuple[str, list[str]]:
    """The study and the archive paths of its stored files (no ZIP's)."""
    archive = open_archive(root)
    [study] = archive.study_uids()
    found = []
    for key in archive.instance_keys([study]):
        found += [
            paths.instance_metadata(*key),
            paths.instance_info(*key),
            paths.frame_path(*key, 1),
        ]
    return study, [paths.study_metadata(study), *found]


def _replace(path: Path) -> None:
    copy = path.with_name(path.name + ".copy")
    shutil.copyfile(path, copy)
    os.replace(copy, path)


def test_a_replaced_file_changes_the_tag_and_fails_the_check(archive_root: Path) -> None:
    study, files = _files(archive_root)
    measured = Inputs(open_archive(archive_root))
    measured.measure(*files)
    tag = measured.tag("retrieve", "zip")
    measured.check(files)  # nothing changed

    again = Inputs(open_archive(archive_root))
    again.measure(*files)
    assert again.tag("retrieve", "zip") == tag
    assert again.tag("retrieve", "multipart") != tag  # another representation

    packed = archive_root / "studies" / f"{study}.zip"
    changed = packed if packed.exists() else archive_root / files[-1]
    _replace(changed)
    with pytest.raises(ChangedWhileSent, match="changed while the answer was made"):
        measured.check(files)
    later = Inputs(open_archive(archive_root))
    later.measure(*files)
    assert later.tag("retrieve", "zip") != tag


def test_a_missing_file_is_measured_as_missing(archive_root: Path) -> None:
    _, files = _files(archive_root)
    missing = files[-1].replace("frames/1", "frames/2")
    measured = Inputs(open_archive(archive_root))
    measured.measure(missing, *files)
    assert measured.newest is None  # a time is not known for every file
    measured.check([missing])


def test_newest_is_the_last_written(archive_root: Path) -> None:
    _, files = _files(archive_root)
    measured = Inputs(open_archive(archive_root))
    measured.measure(*files)
    times = {os.stat(p).st_mtime for p in (archive_root / "studies").rglob("*") if p.is_file()}
    assert measured.newest is not None and measured.newest <= max(times)
    assert measured.newest in times


def test_product_names_the_libraries_that_make_the_bytes() -> None:
    assert product().startswith("dicomweb-archive/")
    assert all(f" {name}/" in product() for name in ("pydicom", "imagecodecs", "numpy", "python"))


def _product_of(parent: Path) -> str:
    """:func:`product` in a Python that imports the package from ``parent``."""
    code = "from dicomweb_archive.server.inputs import product; print(product())"
    environment = {**os.environ, "PYTHONPATH": str(parent)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_product_names_the_code_not_only_its_version(tmp_path: Path) -> None:
    """The same version number with another writer makes other bytes: another tag."""
    package = Path(dicomweb_archive.__file__).parent
    same, changed = tmp_path / "same", tmp_path / "changed"
    for parent in (same, changed):
        shutil.copytree(package, parent / package.name, ignore=shutil.ignore_patterns("*.pyc"))
    writer = changed / package.name / "export" / "writer.py"
    writer.write_text(writer.read_text() + "\n_CHANGED = True\n")
    assert _product_of(same) == product()
    assert _product_of(changed) != product()
