"""Range parsing (RFC 9110 14.1.2): what ``byte_range`` makes of a ``Range`` header."""

from __future__ import annotations

import pytest

from dicomweb_archive.errors import RangeNotSatisfiableError
from dicomweb_archive.server.responses import byte_range
from dicomweb_archive.types import ByteRange


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 100)),
        ("bytes=10-10", ByteRange(10, 11)),
        ("bytes=999-999", ByteRange(999, 1000)),
        ("BYTES = 5-9", ByteRange(5, 10)),
        ("bytes=100-", ByteRange(100, 1000)),  # open range: to the end
        ("bytes=0-", ByteRange(0, 1000)),
        ("bytes=-10", ByteRange(990, 1000)),  # suffix range: the last ten bytes
        ("bytes=-1000", ByteRange(0, 1000)),
        ("bytes=-5000", ByteRange(0, 1000)),  # a suffix longer than the whole
        ("bytes=0-5000", ByteRange(0, 1000)),  # an end past the end is clipped
        ("bytes=990-1999", ByteRange(990, 1000)),
    ],
)
def test_satisfiable_ranges(header: str, expected: ByteRange) -> None:
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=0-9,20-29",  # several ranges: the whole representation instead
        "bytes=-5,10-",
        "items=0-9",  # another unit
        "none",
        "bytes",
        "bytes=",
        "bytes=5",
        "bytes=a-b",
        "bytes=1-x",
        "bytes=--5",
        "bytes=-",
        "bytes=9-3",  # last before first
        "bytes=-3-5",
        "bytes=1_0-2_0",  # numbers as int() reads them, not as HTTP writes them
        "bytes=+1-5",
        "bytes=١-٥",
        "bytes=１-５",
        "bytes= 1-5 ,",
        f"bytes={'9' * 5000}-",  # more digits than any size
    ],
)
def test_ignored_ranges(header: str) -> None:
    assert byte_range(header, 1000) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-1999", "bytes=5000-10", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiableError) as caught:
        byte_range(header, 1000)
    assert caught.value.total == 1000
    assert dict(caught.value.headers) == {"Content-Range": "bytes */1000"}


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=0-0", "bytes=-10"])
def test_no_range_of_an_empty_representation(header: str) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        byte_range(header, 0)
