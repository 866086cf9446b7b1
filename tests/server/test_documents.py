"""Metadata answers kept per stored file version and service URL, within a budget."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.server import metadata
from dicomweb_archive.server.app import create_app
from dicomweb_archive.server.documents import DocumentKey, Documents


def _key(name: str, coding: str = "gzip") -> DocumentKey:
    return DocumentKey(name, "v1", 0, "http://host/dicomweb/studies/1", coding)


def test_least_recently_used_answers_go_beyond_the_budget() -> None:
    kept = Documents(budget=10)
    kept.put(_key("a"), b"aaaa")
    kept.put(_key("b"), b"bbbb")
    assert kept.get(_key("a")) == b"aaaa"  # a is now the most recent
    kept.put(_key("c"), b"cccc")
    assert kept.get(_key("b")) is None
    assert kept.get(_key("a")) == b"aaaa" and kept.get(_key("c")) == b"cccc"
    assert kept.held == 8 and len(kept) == 2
    kept.put(_key("a"), b"a")  # replaced, not counted twice
    assert kept.held == 5
    kept.put(_key("huge"), b"x" * 11)  # larger than the budget: not kept
    assert kept.get(_key("huge")) is None and kept.held == 5
    # Every part of the key counts.
    assert kept.get(_key("a", coding="")) is None
    assert kept.get(DocumentKey("a", "v2", 0, "http://host/dicomweb/studies/1", "gzip")) is None


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    assert (
        Converter(root, ConvertOptions(workers=1)).convert([get_testdata_file("CT_small.dcm")]).ok
    )
    return root


def test_an_answer_is_made_once_per_version_and_host(
    archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ct = get_testdata_file("CT_small.dcm", read=True)
    relative = paths.series_metadata(ct.StudyInstanceUID, ct.SeriesInstanceUID)
    url = f"/dicomweb/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}/metadata"
    made: list[bytes] = []
    rewrite = metadata.absolute_bulkdata_uris

    def counted(document: bytes, study_url: str) -> bytes:
        made.append(document)
        return rewrite(document, study_url)

    monkeypatch.setattr(metadata, "absolute_bulkdata_uris", counted)
    with TestClient(create_app(archive)) as client:
        first = client.get(url, headers={"Accept-Encoding": "gzip"})
        again = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
        assert len(made) == 1
        # Another host, another coding: other answers.
        other = client.get(url, headers={"Accept-Encoding": "gzip", "Host": "other:8080"})
        assert b"http://other:8080/dicomweb/" in other.content
        assert b"http://other:8080/" not in first.content
        client.get(url, headers={"Accept-Encoding": "identity"})
        assert len(made) == 3
        # The stored document replaced (as a writer does): the new one is answered.
        stored = archive / relative
        document = gzip.decompress(stored.read_bytes())
        changed = document.replace(b'"CT"', b'"MR"')
        assert changed != document
        replacement = stored.with_name("replacement")
        replacement.write_bytes(gzip.compress(changed))
        os.replace(replacement, stored)
        fresh = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert b'"MR"' in fresh.content and fresh.headers["etag"] != first.headers["etag"]
        assert len(made) == 4
