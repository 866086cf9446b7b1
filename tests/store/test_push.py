"""Pushing a local archive into a real S3 API (moto): only what changed, resumable,
in publication order, with the headers of a static host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model.hosting import HEAD_SIZE, publication_rank, static_headers
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.base import files_under
from dicomweb_archive.store.objectstore import ObjectStore
from dicomweb_archive.store.packing import pack_study
from dicomweb_archive.store.push import push
from tests.conftest import write_instance
from tests.objectstore import MotoServer

SOURCES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_rle_2frame.dcm")


def _published(store: Any) -> dict[str, bytes]:
    return {name: store.read(name) for name in [*files_under(store, "studies"), "manifest.json"]}


@pytest.fixture
def local(tmp_path: Path) -> Path:
    archive = tmp_path / "archive"
    files = [str(get_testdata_file(name)) for name in SOURCES]
    assert Converter(archive, ConvertOptions(workers=1)).convert(files).ok
    return archive


def test_a_push_copies_the_archive_with_static_headers(
    s3_server: MotoServer, s3_url: str, local: Path
) -> None:
    with open_archive(local) as source:
        # A packed study arrives as a folder.
        pack_study(source, source.study_uids()[0], remove=True)
        with open_archive(s3_url) as target:
            result = push(source, target)
            assert len(result.studies) == 3 and result.written > 0 and result.unchanged == 0
            assert _published(target.store) == {
                name: source.read(name)
                for name in [*_published(open_archive(local).store)]
                if not name.endswith(".zip")
            } | _unpacked(source)
    bucket, _, prefix = s3_url.removeprefix("s3://").partition("/")
    client: Any = s3_server.client()
    for name, data in _published(ObjectStore(s3_url)).items():
        head = client.head_object(Bucket=bucket, Key=f"{prefix}/{name}")
        wanted = static_headers(name, data[:HEAD_SIZE])
        assert head["ContentType"] == wanted["Content-Type"], name
        assert head.get("ContentEncoding") == wanted.get("Content-Encoding"), name


def _unpacked(source: Any) -> dict[str, bytes]:
    packed = [s for s in source.study_uids() if source.is_packed(s)]
    return {name: source.read(name) for s in packed for name in source.study_zip(s).names()}


def test_a_second_push_sends_only_what_changed(s3_url: str, local: Path, tmp_path: Path) -> None:
    with open_archive(local) as source, open_archive(s3_url) as target:
        first = push(source, target)
        again = push(source, target)
        assert again.written == 0 and again.unchanged == first.written
        # One more instance in a new study: its files and the study list change.
        study = generate_uid()
        extra = write_instance(tmp_path / "in", study=study, series=generate_uid())
        assert Converter(local, ConvertOptions(workers=1)).convert([str(extra)]).ok
        third = push(source, target)
        assert third.unchanged == first.written
        assert 0 < third.written < first.written
        assert study in [s for s in third.studies]
        assert _published(target.store)["studies/index.json.gz"] == source.read(
            "studies/index.json.gz"
        )


def test_a_failed_push_is_resumed_and_documents_come_last(
    s3_url: str, local: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target_store = ObjectStore(s3_url)
    written: list[str] = []
    real_write = ObjectStore.write

    def failing(self: ObjectStore, path: str, *parts: bytes) -> bool:
        if len(written) == 12:
            raise OSError("connection lost")
        changed = real_write(self, path, *parts)
        if changed and path.startswith("studies/"):
            written.append(path)
        return changed

    monkeypatch.setattr(ObjectStore, "write", failing)
    with open_archive(local) as source, open_archive(target_store) as target:
        with pytest.raises(OSError, match="connection lost"):
            push(source, target, workers=1)
        # Per study, nothing was published before what it names.
        ranks = [publication_rank(name) for name in written]
        studies = [name.split("/")[1] for name in written]
        for study in set(studies):
            own = [r for r, s in zip(ranks, studies, strict=True) if s == study]
            assert own == sorted(own)
        monkeypatch.setattr(ObjectStore, "write", real_write)
        resumed = push(source, target)
        assert resumed.unchanged >= 12
        assert _published(target.store) == _published(source.store)


def test_delete_removes_what_the_source_dropped(s3_url: str, local: Path) -> None:
    with open_archive(local) as source, open_archive(s3_url) as target:
        push(source, target)
        study = source.study_uids()[0]
        stray = f"studies/{study}/series/1.2.3/instances/1.2.4/metadata.gz"
        target.store.write(stray, b"\x1f\x8b old")
        kept = push(source, target)
        assert kept.removed == 0 and target.store.exists(stray)
        dropped = push(source, target, delete=True)
        assert dropped.removed == 1 and not target.store.exists(stray)
        assert _published(target.store) == _published(source.store)
