"""The registry: where each SOP Instance UID is stored."""

from __future__ import annotations

import os
from pathlib import Path

from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.store import registry
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.base import instances_of
from dicomweb_archive.store.packing import pack_study
from dicomweb_archive.store.removal import Target, delete
from dicomweb_archive.types import InstanceKey
from tests.conftest import write_instance


def test_entries_count_only_while_the_instance_is_there(tmp_path: Path) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    source = write_instance(tmp_path / "in", study=study, series=series, sop=sop)
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([str(source)]).ok
    key = InstanceKey(study, series, sop)
    with open_archive(root) as archive:
        assert registry.registered(archive.store, sop) == key
        assert registry.locate(archive, sop) == key
        pack_study(archive, study, remove=True)
        assert registry.locate(archive, sop) == key  # read from the ZIP
        assert instances_of(archive, study) == [key]
        assert instances_of(archive, study, "1.2.3") == []
        # Another key's removal leaves the entry; the instance gone, it no longer counts.
        registry.unregister(archive.store, InstanceKey(study, "1.2.3", sop))
        assert registry.registered(archive.store, sop) == key
        archive.store.remove(paths.study_zip(study))
        assert registry.registered(archive.store, sop) == key
        assert registry.locate(archive, sop) is None


def test_rebuild_registers_what_was_stored_before(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    sources = [
        str(write_instance(tmp_path / "in", study=study, series=series, instance_number=n))
        for n in (1, 2)
    ]
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert(sources).ok
    with open_archive(root) as archive:
        archive.store.remove_tree(registry.REGISTRY)
        assert registry.rebuild(archive) == 2
        for key in instances_of(archive, study):
            assert registry.locate(archive, key.sop_instance_uid) == key


def test_an_entry_found_absent_is_written_in_place(tmp_path: Path) -> None:
    key = InstanceKey("1.2", "1.2.3", "1.2.3.4")
    with open_archive(tmp_path / "archive") as archive:
        registry.register(archive.store, key, absent=True)
        assert registry.registered(archive.store, key.sop_instance_uid) == key
        # Not committed: the entry alone does not count.
        assert registry.locate(archive, key.sop_instance_uid) is None
        assert registry.committed(archive, key) is None
        moved = InstanceKey("1.2", "1.2.5", "1.2.3.4")
        registry.register(archive.store, moved)
        assert registry.registered(archive.store, key.sop_instance_uid) == moved
        archive.store.write(paths.instance_metadata(*moved), b"[]")
        assert registry.committed(archive, moved) == moved


def test_the_entries_of_a_series_share_one_file_until_it_is_removed(tmp_path: Path) -> None:
    study, series, other = generate_uid(), generate_uid(), generate_uid()
    sources = [
        str(write_instance(tmp_path / "in", study=study, series=uid, instance_number=n))
        for n, uid in enumerate((series, series, other))
    ]
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert(sources).ok
    shared = root / registry.SHARED / study
    with open_archive(root) as archive:
        keys = instances_of(archive, study)
        entries = {key: os.stat(root / registry.REGISTRY / key.sop_instance_uid) for key in keys}
        for key, entry in entries.items():
            assert entry.st_ino == os.stat(shared / key.series_instance_uid).st_ino
            assert registry.registered(archive.store, key.sop_instance_uid) == key
        delete(archive, Target(study, other))
        assert sorted(p.name for p in shared.iterdir()) == [series]
        delete(archive, Target(study))
        assert not shared.exists()
        assert not list((root / registry.REGISTRY).iterdir())
