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
