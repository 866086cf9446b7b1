"""Conversion options: defaults, worker count, what the manifest keeps."""

from __future__ import annotations

import dataclasses
import os

import pytest

from dicomweb_archive import ConvertOptions
from dicomweb_archive.model import multipart


def test_defaults() -> None:
    options = ConvertOptions()
    assert options.frames == "multipart"
    # Binary values over these sizes become bulk data (public: 128 KiB and a word).
    assert (options.public_bulk_size, options.private_bulk_size) == (131074, 64)
    assert options.workers is None


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ConvertOptions().frames = "raw"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("workers", "expected"), [(1, 1), (3, 3), (None, os.cpu_count() or 1), (0, os.cpu_count() or 1)]
)
def test_worker_count(workers: int | None, expected: int) -> None:
    assert ConvertOptions(workers=workers).worker_count() == expected


def test_manifest_keeps_what_shapes_stored_bytes() -> None:
    options = ConvertOptions(frames="raw", public_bulk_size=10, private_bulk_size=20, workers=4)
    assert options.archive_options().to_json() == {
        "frames": "raw",
        "boundary": multipart.BOUNDARY,
        "publicBulkSize": 10,
        "privateBulkSize": 20,
    }
    # How many workers ran does not shape the archive.
    one, eight = ConvertOptions(workers=1), ConvertOptions(workers=8)
    assert one.archive_options() == eight.archive_options()
    assert ConvertOptions.for_archive(options.archive_options(), workers=4) == options
