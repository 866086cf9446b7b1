"""Every server test runs over both layouts of an archive: study folders, and
the same studies packed into one ZIP each (the folders removed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import multipart
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.packing import pack_study
from tests.server.live import live_server


@pytest.fixture(scope="module", params=["folders", "zips"])
def layout(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def arrange(root: Path, layout: str) -> Path:
    """Pack every study of the archive at ``root`` when the layout says so."""
    if layout == "zips":
        archive = open_archive(root)
        for study in archive.study_uids():
            pack_study(archive, study, remove=True)
        assert not any(p.is_dir() for p in (root / "studies").iterdir())
    return root


def stored(root: Path, relative: str) -> bytes:
    """The stored bytes of an archive resource, whatever the layout."""
    return open_archive(root).read(relative)


#: The reference files of the WADO-RS tests: native, big endian, RLE, JPEG 2000,
#: JPEG baseline and JPEG-LS.
SOURCES = [
    "CT_small.dcm",
    "MR_small_bigendian.dcm",
    "SC_rgb_rle_2frame.dcm",
    "JPEG2000.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "emri_small_jpeg_ls_lossless.dcm",
]
EVRLE = "1.2.840.10008.1.2.1"


def converted(tmp_path_factory: pytest.TempPathFactory, layout: str, names: list[str]) -> Path:
    """An archive of pydicom's test files ``names``, in ``layout``."""
    root = tmp_path_factory.mktemp("server") / "archive"
    result = Converter(root, ConvertOptions(workers=1)).convert(
        [get_testdata_file(n) for n in names]
    )
    assert result.ok
    return arrange(root, layout)


@pytest.fixture(scope="module")
def reference_archive(tmp_path_factory: pytest.TempPathFactory, layout: str) -> Path:
    """The :data:`SOURCES` converted, in the module's layout."""
    return converted(tmp_path_factory, layout, SOURCES)


@pytest.fixture(scope="module")
def archive(reference_archive: Path) -> Path:
    return reference_archive


@pytest.fixture(scope="module")
def client(archive: Path) -> Iterator[TestClient]:
    with TestClient(create_app(archive)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def live(archive: Path) -> Iterator[str]:
    with live_server(create_app(archive)) as url:
        yield url


def dataset(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(get_testdata_file(name))


def instance_url(ds: pydicom.Dataset) -> str:
    return (
        f"/dicomweb/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


def parts(body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The headers and payload of each part of a multipart body."""
    delimiter = f"--{multipart.BOUNDARY}".encode()
    assert body.endswith(delimiter + b"--\r\n")
    out = []
    for chunk in body.split(b"\r\n" + delimiter)[:-1]:
        chunk = chunk.removeprefix(delimiter)
        head, _, payload = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        out.append((headers, payload))
    return out
