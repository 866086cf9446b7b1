"""Extension folders: written atomically, listed, kept by packing and re-conversion."""

from __future__ import annotations

import gzip
import io
import os
import shutil
from pathlib import Path

import orjson
import pytest
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.errors import InvalidInputError, ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.model.paths import ResourcePath
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.extensions import attach, list_folders
from dicomweb_archive.store.packing import pack_study, unpack_in_place
from dicomweb_archive.types import InstanceKey
from tests.conftest import write_instance

FOLDER = "_aistartupco_covid19_detection"
RESULT = b'{"covid19": 0.12}'


@pytest.fixture
def study(tmp_path: Path) -> tuple[Path, InstanceKey, Path]:
    """An archive of one instance; its key and source file."""
    key = InstanceKey(generate_uid(), generate_uid(), generate_uid())
    source = write_instance(
        tmp_path / "in", study=key.study_instance_uid, series=key.series_instance_uid, sop=key[2]
    )
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([str(source)]).ok
    return root, key, source


def _listed(root: Path, study: str) -> dict[str, object]:
    document: dict[str, object] = orjson.loads(
        gzip.decompress((root / paths.study_extensions(study)).read_bytes())
    )
    return document


def test_attach_at_every_level(study: tuple[Path, InstanceKey, Path]) -> None:
    root, key, _ = study
    archive = open_archive(root)
    levels = [
        ResourcePath.study(key.study_instance_uid),
        ResourcePath.series(*key[:2]),
        ResourcePath.instance(key),
    ]
    for level in levels:
        [done] = attach(archive, level, FOLDER, [("result.json", io.BytesIO(RESULT))])
        assert (done.created, done.changed, done.size) == (True, True, len(RESULT))
        assert done.content_type == "application/json"
        assert (root / str(level) / FOLDER / "result.json").read_bytes() == RESULT
    document = _listed(root, key.study_instance_uid)
    assert document["format"] == "dicomweb-archive/extensions"
    entries = document["extensions"]
    assert isinstance(entries, list)
    assert [e["level"] for e in entries] == ["study", "series", "instance"]
    assert [e["path"] for e in entries] == [
        FOLDER,
        f"series/{key[1]}/{FOLDER}",
        f"series/{key[1]}/instances/{key[2]}/{FOLDER}",
    ]
    assert entries[2]["sopInstanceUID"] == key[2]
    assert entries[2]["vendor"] == "aistartupco"
    assert entries[2]["files"] == [
        {"name": "result.json", "size": len(RESULT), "contentType": "application/json"}
    ]


def test_attach_again_and_replace(study: tuple[Path, InstanceKey, Path]) -> None:
    root, key, _ = study
    archive = open_archive(root)
    level = ResourcePath.instance(key)
    attach(archive, level, FOLDER, [("result.json", io.BytesIO(RESULT))])
    [same] = attach(archive, level, FOLDER, [("result.json", io.BytesIO(RESULT))])
    assert (same.created, same.changed) == (False, False)
    [other] = attach(archive, level, FOLDER, [("result.json", io.BytesIO(b"{}"))])
    assert (other.created, other.changed, other.size) == (False, True, 2)


def test_levels_must_exist(study: tuple[Path, InstanceKey, Path]) -> None:
    root, key, _ = study
    archive = open_archive(root)
    for level in (
        ResourcePath.study(generate_uid()),
        ResourcePath.series(key.study_instance_uid, generate_uid()),
        ResourcePath.instance((*key[:2], generate_uid())),
    ):
        with pytest.raises(ResourceNotFoundError):
            attach(archive, level, FOLDER, [("result.json", io.BytesIO(RESULT))])
    with pytest.raises(InvalidInputError):
        attach(archive, ResourcePath.instance(key), FOLDER, [])


@pytest.mark.parametrize("name", ["../metadata.gz", "..", "/etc/passwd", "a/b", "%2e%2e"])
def test_nothing_is_written_for_a_bad_name(
    study: tuple[Path, InstanceKey, Path], name: str
) -> None:
    root, key, _ = study
    before = sorted(p for p in root.rglob("*") if ".dwa" not in p.parts)
    with pytest.raises(InvalidInputError):
        attach(
            open_archive(root),
            ResourcePath.instance(key),
            FOLDER,
            [("fine.json", io.BytesIO(b"1")), (name, io.BytesIO(b"2"))],
        )
    assert sorted(p for p in root.rglob("*") if ".dwa" not in p.parts) == before


def test_a_linked_folder_is_not_written_through(
    study: tuple[Path, InstanceKey, Path], tmp_path: Path
) -> None:
    root, key, _ = study
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / str(ResourcePath.instance(key)) / FOLDER)
    with pytest.raises(InvalidInputError, match="symbolic link"):
        attach(
            open_archive(root), ResourcePath.instance(key), FOLDER, [("x.json", io.BytesIO(b"1"))]
        )
    assert list(outside.iterdir()) == []
    # Nor listed: a linked folder is not an extension folder of the archive.
    assert list_folders(open_archive(root).store, key.study_instance_uid) == []


def test_kept_by_reconversion(study: tuple[Path, InstanceKey, Path]) -> None:
    root, key, source = study
    level = ResourcePath.instance(key)
    attach(open_archive(root), level, FOLDER, [("result.json", io.BytesIO(RESULT))])
    # The same source again, then a changed one (another pixel size): an update.
    assert Converter(root, ConvertOptions(workers=1)).convert([str(source)]).ok
    changed = write_instance(
        source.parent / "changed", study=key[0], series=key[1], sop=key[2], rows=8, columns=8
    )
    replace = ConvertOptions(workers=1, on_duplicate="overwrite")
    result = Converter(root, replace).convert([str(changed)])
    assert result.counts["updated"] == 1
    assert (root / str(level) / FOLDER / "result.json").read_bytes() == RESULT
    assert _listed(root, key.study_instance_uid)["extensions"]


def test_kept_by_pack_and_unpack(study: tuple[Path, InstanceKey, Path]) -> None:
    root, key, _ = study
    archive = open_archive(root)
    extension = ResourcePath.instance(key).extension_path(FOLDER, "result.json")
    attach(archive, ResourcePath.instance(key), FOLDER, [("result.json", io.BytesIO(RESULT))])
    pack_study(archive, key.study_instance_uid, remove=True)
    assert not (root / paths.study_dir(key.study_instance_uid)).exists()
    # Served from the ZIP, listed there too.
    assert archive.read(extension.file) == RESULT
    assert archive.exists(paths.study_extensions(key.study_instance_uid))
    # Attaching to a packed study unpacks it first, like a conversion.
    attach(archive, ResourcePath.study(key[0]), "_v_report", [("r.pdf", io.BytesIO(b"%PDF"))])
    assert not archive.is_packed(key.study_instance_uid)
    pack_study(archive, key.study_instance_uid, remove=True)
    assert unpack_in_place(archive, key.study_instance_uid)
    assert (root / extension.file).read_bytes() == RESULT
    assert (root / paths.study_dir(key[0]) / "_v_report" / "r.pdf").read_bytes() == b"%PDF"
    assert [e["name"] for e in _listed(root, key[0])["extensions"]] == ["_v_report", FOLDER]  # type: ignore[union-attr]


def test_a_refresh_drops_folders_that_went_with_their_level(
    study: tuple[Path, InstanceKey, Path],
) -> None:
    root, key, _ = study
    archive = open_archive(root)
    attach(archive, ResourcePath.study(key[0]), "_v_study", [("s.json", io.BytesIO(b"{}"))])
    attach(archive, ResourcePath.instance(key), FOLDER, [("result.json", io.BytesIO(RESULT))])
    # The instance's folder goes (as a removal of the instance would take it).
    shutil.rmtree(root / str(ResourcePath.instance(key)) / FOLDER)
    Catalog(archive).refresh([key.study_instance_uid])
    assert [e["name"] for e in _listed(root, key[0])["extensions"]] == ["_v_study"]  # type: ignore[union-attr]
    shutil.rmtree(root / paths.study_dir(key[0]) / "_v_study")
    Catalog(archive).refresh([key.study_instance_uid])
    assert not (root / paths.study_extensions(key[0])).exists()
