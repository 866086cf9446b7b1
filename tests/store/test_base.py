"""What every backend shares: deterministic documents, walking folders, scratch space."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pytest

from dicomweb_archive.model import paths
from dicomweb_archive.store.base import (
    dumps_json,
    files_under,
    folders,
    gunzip,
    gzip_bytes,
    scratch_folder,
)
from dicomweb_archive.store.directory import DirectoryStore
from dicomweb_archive.store.memory import MemoryStore


def test_documents_are_deterministic() -> None:
    assert dumps_json({"b": 1, "a": [2]}) == b'{"a":[2],"b":1}'
    assert gzip_bytes(b"x") == gzip_bytes(b"x")
    assert gzip.decompress(gzip_bytes(b"x")) == b"x"


def test_gunzip_answers_as_gzip_decompress() -> None:
    one = gzip_bytes(b"one")
    two = one + gzip.compress(b" two")
    for data in (one, two, b"", gzip.compress(b"")):
        assert gunzip(data) == gzip.decompress(data)
    for broken in (one[:-3], one[:5], b"not gzip", one + b"x"):
        with pytest.raises(Exception) as expected:
            gzip.decompress(broken)
        with pytest.raises(expected.type):
            gunzip(broken)
    corrupt = bytearray(one)
    corrupt[-8] ^= 1  # the CRC
    with pytest.raises(gzip.BadGzipFile):
        gunzip(bytes(corrupt))


def test_walking_folders() -> None:
    store = MemoryStore()
    for name in ("a/b/1", "a/b/2", "a/c", "a.x/1"):
        store.write(name, b"")
    assert folders(store, "a") == ["b"]
    assert sorted(files_under(store, "a")) == ["a/b/1", "a/b/2", "a/c"]
    assert list(files_under(store, "nothing")) == []


def test_scratch_is_beside_a_local_archive(tmp_path: Path) -> None:
    local = scratch_folder(DirectoryStore(tmp_path))
    assert local == str(tmp_path / paths.WORK_DIR / "tmp") and Path(local).is_dir()
    assert scratch_folder(MemoryStore()) == tempfile.gettempdir()
