"""Inputs in an object store: a real S3 API (moto) on loopback, on one core and on
a real Dask cluster, into a local archive and into the bucket.

The inputs are the generated CT and reference files (with copies of one instance
and a file that is not DICOM) uploaded under a prefix; each conversion must equal,
byte for byte, one process on one core converting the same prefix.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_testdata_file

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.cluster import DaskRunner
from dicomweb_archive.convert import objects
from dicomweb_archive.convert.inputs import InputRef, Spool, UnreadableInput, expand
from dicomweb_archive.demo.samples import write_ct_series
from dicomweb_archive.errors import InvalidInputError
from tests.conftest import tree
from tests.objectstore import MotoServer

#: Reference files with copies of one instance (different transfer syntaxes).
COPIES = ("rtdose.dcm", "rtdose_1frame.dcm", "rtdose_expb.dcm", "rtdose_rle.dcm")
#: The copies replace each other in input order (the duplicates policy the replay of
#: copies reproduces on any number of workers).
ONE = ConvertOptions(workers=1, on_duplicate="overwrite")
CLUSTER = ConvertOptions(on_duplicate="overwrite")


def _bucket_tree(server: MotoServer, bucket: str) -> dict[str, bytes]:
    client: Any = server.client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
            found[entry["Key"]] = body
    return found


@pytest.fixture(scope="module")
def prefix(s3_server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``s3://bucket/scans``: a CT series, copies of one instance, a gzipped file, a README."""
    local = tmp_path_factory.mktemp("scans")
    write_ct_series(local / "ct", slices=12, rows=64, columns=64)
    for name in COPIES:
        shutil.copyfile(get_testdata_file(name), local / name)
    (local / "mr.dcm.gz").write_bytes(
        gzip.compress(Path(get_testdata_file("MR_small.dcm")).read_bytes())
    )
    (local / "README").write_text("not DICOM")
    bucket = s3_server.bucket("inputs")
    client: Any = s3_server.client()
    for path in sorted(local.rglob("*")):
        if path.is_file():
            key = f"scans/{path.relative_to(local)}"
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return f"s3://{bucket}/scans"


def test_a_prefix_lists_like_a_folder(prefix: str) -> None:
    with Spool("unused") as spool:
        found = list(expand([prefix, f"{prefix}/rtdose.dcm", f"{prefix}/gone"], spool))
    names = [item.name for item in found]
    assert names[:4] == [f"{prefix}/README", *(f"{prefix}/ct/CT{n:04d}.dcm" for n in (1, 2, 3))]
    assert names[-3:-1] == [f"{prefix}/rtdose_rle.dcm", f"{prefix}/rtdose.dcm"]
    refs = [item for item in found if isinstance(item, InputRef)]
    assert all(ref.contained for ref in refs[:-1]) and not refs[-1].contained
    assert found[-1] == UnreadableInput(f"{prefix}/gone", "no such object or prefix")
    with refs[-1].open() as fp:
        assert fp.read() == Path(get_testdata_file("rtdose.dcm")).read_bytes()


def test_an_unknown_scheme_is_a_reason_not_a_crash() -> None:
    with pytest.raises(InvalidInputError):
        objects.list_objects("nosuchscheme://bucket/x")


def test_one_core_from_the_bucket(prefix: str, tmp_path: Path) -> None:
    result = Converter(tmp_path / "archive", ONE).convert([prefix])
    assert result.ok and result.counts["converted"] == 12 + 2
    assert result.counts["updated"] == len(COPIES) - 1
    assert [(o.name, o.status) for o in result.skipped] == [(f"{prefix}/README", "skipped")]


def test_a_cluster_from_the_bucket_into_a_folder_and_into_the_bucket(
    prefix: str, s3_server: MotoServer, dask_client: Any, tmp_path: Path
) -> None:
    one = Converter(tmp_path / "one-core", ONE).convert([prefix])
    there = Converter(tmp_path / "cluster", CLUSTER, runner=DaskRunner(dask_client)).convert(
        [prefix]
    )
    assert tree(tmp_path / "cluster") == tree(tmp_path / "one-core")
    assert there.to_json()["failures"] == one.to_json()["failures"]
    # And into an archive in the bucket: the same objects, byte for byte.
    buckets = [s3_server.bucket("archive") for _ in range(2)]
    Converter(f"s3://{buckets[0]}/a", ONE).convert([prefix])
    Converter(f"s3://{buckets[1]}/a", CLUSTER, runner=DaskRunner(dask_client)).convert([prefix])
    expected = _bucket_tree(s3_server, buckets[0])
    assert _bucket_tree(s3_server, buckets[1]) == expected
    assert "a/studies/index.json.gz" in expected
