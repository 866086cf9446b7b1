"""Seeded fuzzing of STOW-RS: damaged instances fail alone, and the archive stays valid.

Requests of one to three parts, each a real file with a fresh SOP Instance UID,
most of them damaged as ``tests/convert/test_fuzz.py`` damages its inputs,
are stored through the application.  No request may fail as a whole with a
server error, nothing may be logged as an error, and once the write-behind
flush ran, every committed instance has metadata, info and frames that agree.
"""

from __future__ import annotations

import random
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from tests.conftest import errors_logged
from tests.convert.test_fuzz import SOURCES, _check_instance, _mutant

SEED = 20261207
REQUESTS = 120
BOUNDARY = "fuzz"
MULTIPART = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def _source(name: str) -> tuple[bytes, bytes]:
    """A file's bytes and its SOP Instance UID as written in them."""
    path = get_testdata_file(name)
    uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
    return Path(path).read_bytes(), str(uid).encode()


def test_damaged_instances_fail_alone_and_the_archive_stays_valid(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    sources = [_source(name) for name in SOURCES]
    archive = tmp_path / "archive"
    assert Converter(archive, ConvertOptions(workers=1)).convert([]).ok
    statuses: set[int] = set()
    with (
        errors_logged() as errors,
        TestClient(create_app(archive), raise_server_exceptions=False) as client,
    ):
        for number in range(REQUESTS):
            body = b""
            for _ in range(rng.choice([1, 1, 2, 3])):
                data, uid = rng.choice(sources)
                # A fresh UID of the same length: copies of one source are other instances.
                data = data.replace(uid, uid[:-6] + str(rng.randrange(100_000, 1_000_000)).encode())
                part = _mutant(rng, data) if rng.random() < 0.8 else data
                body += f"\r\n--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                body += part
            body += f"\r\n--{BOUNDARY}--\r\n".encode()
            response = client.post(
                "/dicomweb/studies", content=body, headers={"Content-Type": MULTIPART}
            )
            assert response.status_code < 500, (number, response.text)
            statuses.add(response.status_code)
    assert not errors, errors[:3]
    assert {200, 202, 409} <= statuses  # stored, some stored, none stored
    with open_archive(str(archive)) as opened:
        Catalog(opened).refresh()
    committed = sorted(archive.glob("studies/*/series/*/instances/*/metadata.gz"))
    assert len(committed) > REQUESTS // 4
    for metadata_path in committed:
        _check_instance(metadata_path)
