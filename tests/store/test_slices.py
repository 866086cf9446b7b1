from __future__ import annotations

import os
from pathlib import Path

from dicomweb_archive.store.slices import Slice


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (written back first)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_read_cached_only_from_the_page_cache(tmp_path: Path) -> None:
    path = tmp_path / "frame"
    data = os.urandom(300_000)
    path.write_bytes(data)
    part = Slice.whole(path).part(1000, 200_000)
    assert part.read_cached() == data[1000:200_000]

    evict(path)
    # On disk only: declined at once, where a plain read would wait for it.
    assert part.read_cached() is None
    assert part.read() == data[1000:200_000]
    assert part.read_cached() == data[1000:200_000]


def test_a_slice_reads_the_file_it_measured_after_a_replace(tmp_path: Path) -> None:
    """Writers rename new files into place: a slice keeps the bytes it announced."""
    path = tmp_path / "metadata.gz"
    path.write_bytes(b"old bytes, and longer")
    whole = Slice.whole(path)
    replacement = tmp_path / "new"
    replacement.write_bytes(b"new")
    os.replace(replacement, path)
    assert whole.length == len(b"old bytes, and longer")
    assert whole.read() == b"old bytes, and longer"
    assert whole.part(4, 9).read() == b"bytes"
    assert whole.read_cached() in (None, bytearray(b"old bytes, and longer"))
    assert Slice.whole(path).read() == b"new"


def test_only_regular_files_are_slices(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(FileNotFoundError):
        Slice.whole(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(FileNotFoundError):  # refused at once, never waiting for a writer
        Slice.whole(fifo)
