"""Streamed ZIP files: read back by zipfile (and Info-ZIP), constant memory, ZIP64."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomweb_archive.export.zipstream import ZipMember, zip_stream
from dicomweb_archive.store.studyzip import StudyZip

MiB = 1 << 20
ZEROS = bytes(MiB)


def _zeros(count: int) -> Iterator[bytes]:
    for _ in range(count):
        yield ZEROS


def _members() -> list[ZipMember]:
    return [
        ZipMember.from_bytes("a/1.dcm", b"first" * 1000),
        ZipMember("a/2.dcm", (b"x" * 100, b"y" * 70000, b"z")),  # size unknown
        ZipMember.from_bytes("b/\u00e9t\u00e9.dcm", b""),
        ZipMember("c/big.bin", _zeros(3), 3 * MiB),
    ]


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_read_back(tmp_path: Path, compression: int) -> None:
    chunks = list(zip_stream(_members(), compression=compression, date_time=(2024, 5, 6, 7, 8, 10)))
    data = b"".join(chunks)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        assert z.namelist() == ["a/1.dcm", "a/2.dcm", "b/\u00e9t\u00e9.dcm", "c/big.bin"]
        assert z.read("a/1.dcm") == b"first" * 1000
        assert z.read("a/2.dcm") == b"x" * 100 + b"y" * 70000 + b"z"
        assert z.read("c/big.bin") == bytes(3 * MiB)
        assert {i.date_time for i in z.infolist()} == {(2024, 5, 6, 7, 8, 10)}
        assert {i.compress_type for i in z.infolist()} == {compression}
        assert all(i.external_attr >> 16 == 0o100644 for i in z.infolist())
    if shutil.which("unzip"):
        path = tmp_path / "stream.zip"
        path.write_bytes(data)
        subprocess.run(["unzip", "-tq", str(path)], check=True, capture_output=True)


@pytest.mark.usefixtures("moving_clock")
def test_the_bytes_depend_on_the_members_alone() -> None:
    """Never on the clock: the same members zipped twice, 2 s apart, are the same bytes."""
    first = b"".join(zip_stream(_members()))
    assert b"".join(zip_stream(_members())) == first
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_chunks_come_as_produced() -> None:
    produced: list[int] = []

    def member(n: int) -> Iterator[bytes]:
        produced.append(n)
        yield bytes([n]) * 100_000

    stream = zip_stream(ZipMember(f"{n}", member(n), 100_000) for n in range(3))
    first = next(stream)
    assert produced == [] and first.startswith(b"PK\x03\x04")
    sizes = [len(first)]
    for chunk in stream:
        sizes.append(len(chunk))
        assert len(produced) <= 3
    # Small pieces (headers) are gathered; the members' own chunks pass through whole.
    assert max(sizes) == 100_000 and sum(sizes) > 300_000


def test_names_unique_and_sizes_honest() -> None:
    with pytest.raises(ValueError, match="twice"):
        list(zip_stream([ZipMember.from_bytes("a", b"1"), ZipMember.from_bytes("a", b"2")]))
    with pytest.raises(ValueError, match="announced"):
        list(zip_stream([ZipMember("a", (b"123",), 2)]))


def test_zip64_records_for_members_of_unknown_size() -> None:
    """A member of unknown size gets ZIP64 headers; a small known one does not."""
    data = b"".join(
        zip_stream([ZipMember("known", (b"abc",), 3), ZipMember("unknown", iter([b"defg"]))])
    )
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        known, unknown = z.infolist()
    # Local headers: data descriptor flag; ZIP64 extra (id 1) only for the unknown size.
    assert struct.unpack_from("<H", data, 6)[0] & 0x8
    assert struct.unpack_from("<HH", data, 26)[1] == 0  # no extra field
    local = unknown.header_offset
    name_length, extra_length = struct.unpack_from("<HH", data, local + 26)
    assert struct.unpack_from("<LL", data, local + 18) == (0xFFFFFFFF, 0xFFFFFFFF)
    assert struct.unpack_from("<H", data, local + 30 + name_length)[0] == 0x0001
    assert extra_length == 20
    # Its data descriptor has 64-bit sizes: signature, CRC, two 8-byte sizes.
    descriptor = local + 30 + name_length + extra_length + 4
    signature, _, compressed, size = struct.unpack_from("<LLQQ", data, descriptor)
    assert signature == 0x08074B50 and compressed == size == 4


def test_memory_stays_flat() -> None:
    tracemalloc.start()
    try:
        total = 0
        for chunk in zip_stream([ZipMember(f"{n}.bin", _zeros(64)) for n in range(4)]):
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 256 * MiB
    assert peak < 4 * MiB


def test_beyond_4_gib(tmp_path: Path) -> None:
    """A 4.1 GiB member, then a small one at an offset past 4 GiB: ZIP64 throughout.

    The zeros are never held: the stream is written to a sparse file (chunks of
    zeros become holes), which zipfile then reads, and which also opens as a
    study ZIP whose last entry lies past 4 GiB.
    """
    started = time.perf_counter()
    count = 4 * 1024 + 100
    prefix = "studies/1.2.3/bulkdata/ab"
    members = [
        ZipMember.from_bytes(f"{prefix}/first", b"hello"),
        ZipMember(f"{prefix}/big", _zeros(count)),
        ZipMember.from_bytes(f"{prefix}/after", b"world" * 3),
    ]
    path = tmp_path / "big.zip"
    with open(path, "wb") as handle:
        for chunk in zip_stream(members):
            if len(chunk) == MiB and chunk == ZEROS:
                handle.seek(MiB, io.SEEK_CUR)
            else:
                handle.write(chunk)
        handle.truncate()
    size = count * MiB
    assert path.stat().st_size > size > 1 << 32
    with zipfile.ZipFile(path) as z:
        first, big, after = z.infolist()
        assert big.file_size == big.compress_size == size
        assert after.header_offset > 1 << 32
        assert z.read(after) == b"world" * 3 and z.read(first) == b"hello"
    with StudyZip(path) as packed:
        entry = packed.entry(f"{prefix}/after")
        assert entry.offset > 1 << 32 and packed.read(f"{prefix}/after") == b"world" * 3
        assert packed.entry(f"{prefix}/big").length == size
    assert time.perf_counter() - started < 20
