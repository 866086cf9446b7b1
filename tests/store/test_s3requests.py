"""The object store's own S3 requests, against a real S3 API (moto on loopback)."""

from __future__ import annotations

import fsspec
import pytest

from dicomweb_archive.errors import ResourceNotFoundError, StoreError
from dicomweb_archive.store import s3requests
from dicomweb_archive.store.base import Entry


@pytest.fixture
def fs_root(s3_url: str) -> tuple[object, str]:
    fs, root = fsspec.core.url_to_fs(s3_url, use_listings_cache=False)
    for name, data in {"a/1": b"one", "a/10": b"ten", "a/b/c": b"", "a.b": b"x"}.items():
        fs.pipe_file(f"{root}/{name}", data)
    return fs, root


def test_head_and_conditional_ranged_gets(fs_root: tuple[object, str]) -> None:
    fs, root = fs_root
    assert s3requests.is_s3(fs)
    info = s3requests.head(fs, f"{root}/a/10")
    assert info is not None and info["size"] == 3
    assert s3requests.head(fs, f"{root}/a/2") is None
    tag = info["ETag"]
    answer = s3requests.get(fs, f"{root}/a/10", "a/10", Range="bytes=1-2", IfMatch=tag)
    assert answer is not None and answer[1] == b"en" and answer[0]["ContentRange"] == "bytes 1-2/3"
    assert s3requests.get(fs, f"{root}/a/10", "a/10", IfNoneMatch=tag) is None  # 304
    with pytest.raises(StoreError, match="a/10 changed while it was read"):
        s3requests.get(fs, f"{root}/a/10", "a/10", IfMatch='"0123"')
    assert s3requests.get(fs, f"{root}/a/b/c", "a/b/c", Range="bytes=0-9") == ({}, b"")
    with pytest.raises(ResourceNotFoundError):
        s3requests.get(fs, f"{root}/a/2", "a/2")


def test_one_listing_tells_files_and_folders(fs_root: tuple[object, str]) -> None:
    fs, root = fs_root
    assert s3requests.exists(fs, f"{root}/a/1")  # beside a/10
    assert s3requests.exists(fs, f"{root}/a")  # a folder, beside a.b
    assert s3requests.exists(fs, f"{root}/a/b")
    assert not s3requests.exists(fs, f"{root}/a/b/x")
    assert s3requests.children(fs, f"{root}/a") == [
        Entry("1", False),
        Entry("10", False),
        Entry("b", True),
    ]
    assert s3requests.children(fs, root) == [Entry("a", True), Entry("a.b", False)]
    assert s3requests.children(fs, f"{root}/none") == []


def test_a_tree_and_listings_of_several_pages(
    fs_root: tuple[object, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fs, root = fs_root
    sizes = {"1": 3, "10": 3, "b/c": 0}
    expected = {
        name: {"size": size, "ETag": _etag(fs, f"{root}/a/{name}")} for name, size in sizes.items()
    }
    real = s3requests.sync
    pages: list[str] = []

    def one_key_a_page(loop: object, call: object, method: str, **request: str) -> object:
        assert method == "list_objects_v2"
        pages.append(method)
        return real(loop, call, method, **request, MaxKeys=1)  # S3 answers 1,000 at most

    monkeypatch.setattr(s3requests, "sync", one_key_a_page)
    assert s3requests.tree(fs, f"{root}/a") == expected
    assert s3requests.children(fs, f"{root}/a") == [
        Entry("1", False),
        Entry("10", False),
        Entry("b", True),
    ]
    assert len(pages) >= 6


def _etag(fs: object, remote: str) -> str:
    info = s3requests.head(fs, remote)
    assert info is not None
    return str(info["ETag"])
