"""Opening a store by location: folders, file://, object stores; other schemes refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomweb_archive.errors import UnsupportedStoreError
from dicomweb_archive.store.directory import DirectoryStore
from dicomweb_archive.store.memory import MemoryStore
from dicomweb_archive.store.objectstore import ObjectStore
from dicomweb_archive.store.url import open_store


def test_paths_and_file_urls_open_a_folder(tmp_path: Path) -> None:
    for location in (tmp_path, str(tmp_path), f"file://{tmp_path}", f"file://localhost{tmp_path}"):
        store = open_store(location)
        assert isinstance(store, DirectoryStore)
        assert store.root == tmp_path
    spaced = tmp_path / "a b"
    opened = open_store(f"file://{str(spaced).replace(' ', '%20')}")
    assert isinstance(opened, DirectoryStore) and opened.root == spaced


def test_a_store_is_passed_through() -> None:
    store = MemoryStore()
    assert open_store(store) is store


def test_object_store_urls_open_an_object_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DWA_WORK_DIR", str(tmp_path / "work"))
    for location in ("s3://bucket/archive", "memory://bucket/archive"):
        store = open_store(location)
        assert isinstance(store, ObjectStore)
        assert store.url == location
        assert store.local_path("studies/x") is None
        assert store.local_path(".dwa/index.sqlite") is not None
    assert list(tmp_path.iterdir()) == []  # nothing local until something is written


@pytest.mark.parametrize("location", ["HTTPS://host/a", "ftp://host/a", "nosuch://b/a"])
def test_other_schemes_are_refused_by_name(
    location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    scheme = location.partition(":")[0].lower()
    with pytest.raises(UnsupportedStoreError, match=f"{scheme}:// archives are not supported"):
        open_store(location)
    assert list(tmp_path.iterdir()) == []


def test_object_stores_without_their_package_say_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(__import__("sys").modules, "gcsfs", None)  # not importable
    with pytest.raises(UnsupportedStoreError, match=r"gs:// archives need gcsfs"):
        open_store("gs://bucket/archive")
    assert list(tmp_path.iterdir()) == []


def test_remote_file_urls_are_refused() -> None:
    with pytest.raises(UnsupportedStoreError, match="local path"):
        open_store("file://server/share")
