"""An archive in a real S3 API (moto on loopback): the bytes of a folder, the headers
of a static host, reads bound to the version they measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_testdata_file

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.errors import StoreError
from dicomweb_archive.model.hosting import HEAD_SIZE, static_headers
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.base import files_under
from dicomweb_archive.store.directory import DirectoryStore
from dicomweb_archive.store.objectstore import PREFETCH, ObjectStore
from tests.objectstore import MotoServer

#: Native CT and MR, a two-frame RLE image, a JPEG 2000 image.
SOURCES = ("CT_small.dcm", "MR_small.dcm", "SC_rgb_rle_2frame.dcm", "JPEG2000.dcm")


def _sources() -> list[str]:
    return [str(get_testdata_file(name)) for name in SOURCES]


def _objects(server: MotoServer, url: str) -> dict[str, dict[str, Any]]:
    """Every object under the archive URL: its head (metadata) and its bytes."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client: Any = server.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            head = client.head_object(Bucket=bucket, Key=item["Key"])
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"].removeprefix(f"{prefix}/")] = {**head, "Body": body}
    return found


def _local_files(root: Path) -> dict[str, bytes]:
    store = DirectoryStore(root)
    names = [name for name in files_under(store, "studies")] + ["manifest.json"]
    return {name: store.read(name) for name in names}


def test_a_conversion_into_s3_is_the_folder_conversion_with_static_headers(
    s3_server: MotoServer, s3_url: str, tmp_path: Path
) -> None:
    result = Converter(s3_url, ConvertOptions(workers=2)).convert(_sources())
    assert result.ok and result.counts["converted"] == len(SOURCES)
    assert Converter(tmp_path / "local", ConvertOptions(workers=1)).convert(_sources()).ok

    objects = _objects(s3_server, s3_url)
    local = _local_files(tmp_path / "local")
    assert {name: o["Body"] for name, o in objects.items()} == local
    assert not any(name.startswith(".dwa") for name in objects)  # the work area is local
    for name, found in objects.items():
        wanted = static_headers(name, found["Body"][:HEAD_SIZE])
        assert found["ContentType"] == wanted["Content-Type"], name
        assert found.get("ContentEncoding") == wanted.get("Content-Encoding"), name
        assert found.get("CacheControl") == wanted.get("Cache-Control"), name
    kinds = {o["ContentType"].partition(";")[0] for o in objects.values()}
    assert kinds == {"application/json", "application/dicom+json", "multipart/related"}

    # A rerun writes nothing: every object keeps its version and time.
    again = Converter(s3_url, ConvertOptions(workers=1)).convert(_sources())
    assert again.counts["unchanged"] == len(SOURCES)
    after = _objects(s3_server, s3_url)
    assert {n: (o["ETag"], o["LastModified"]) for n, o in after.items()} == {
        n: (o["ETag"], o["LastModified"]) for n, o in objects.items()
    }


def test_located_objects_are_read_by_version_and_revalidated(s3_url: str, tmp_path: Path) -> None:
    store = ObjectStore(s3_url, work=tmp_path / "work")
    big = bytes(range(256)) * (PREFETCH // 128)  # two prefetches long
    store.write("big", big)
    located = store.locate("big")
    assert located is not None and located.length == len(big)
    assert located.part(PREFETCH - 10, PREFETCH + 10).read() == big[PREFETCH - 10 : PREFETCH + 10]
    store.write("big", big[::-1])
    with pytest.raises(StoreError, match="changed while it was read"):
        located.part(PREFETCH, PREFETCH + 10).read()  # never the new bytes under the old ETag
    assert store.locate("big").part(0, 3).read() == big[::-1][:3]  # type: ignore[union-attr]

    store.write("small", b"first")
    first = store.locate("small")
    assert first is not None and first.read() == b"first"
    again = store.locate("small")  # revalidated: 304, the cached bytes
    assert again is not None and again.read() == b"first" and again.version == first.version
    store.write("small", b"second")
    changed = store.locate("small")
    assert changed is not None and changed.read() == b"second"
    assert changed.version == store.stat("small").version != first.version


def test_object_store_archives_hold_folders_only(s3_url: str) -> None:
    with open_archive(s3_url) as archive:
        assert isinstance(archive, Archive) and isinstance(archive.store, ObjectStore)
        archive.store.write("studies/1.2.3.zip", b"PK not looked at")
        assert not archive.local_files
        assert not archive.is_packed("1.2.3")
        assert archive.study_zip("1.2.3") is None
