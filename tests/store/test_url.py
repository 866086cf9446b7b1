"""Opening a store by location: folders and file:// today, other schemes refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomweb_archive.errors import UnsupportedStoreError
from dicomweb_archive.store.directory import DirectoryStore
from dicomweb_archive.store.memory import MemoryStore
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


@pytest.mark.parametrize("location", ["s3://bucket/archive", "gs://b/a", "HTTPS://host/a"])
def test_other_schemes_are_refused_by_name(
    location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    scheme = location.partition(":")[0].lower()
    with pytest.raises(UnsupportedStoreError, match=f"{scheme}:// archives are not supported"):
        open_store(location)
    assert list(tmp_path.iterdir()) == []


def test_remote_file_urls_are_refused() -> None:
    with pytest.raises(UnsupportedStoreError, match="local path"):
        open_store("file://server/share")
