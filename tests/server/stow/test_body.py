"""The STOW-RS request's Content-Type (a multipart boundary, or a single instance) and
its parts, spooled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import anyio
import pytest
from starlette.requests import Request

from dicomweb_archive.errors import MalformedRequestError, UnsupportedMediaTypeError
from dicomweb_archive.server.stow.body import Spool, boundary_of, too_large


def test_the_boundary_of_a_multipart_body() -> None:
    related = 'multipart/related; type="application/dicom"; boundary=abc'
    assert boundary_of(related) == "abc"
    assert boundary_of("multipart/related; boundary=xyz") == "xyz"  # type defaults to DICOM
    assert boundary_of("application/dicom") is None


@pytest.mark.parametrize(
    "content_type",
    [None, "", "not a type", "application/json", 'multipart/related; type="image/jpeg"'],
)
def test_other_bodies_are_unsupported(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        boundary_of(content_type)


@pytest.mark.parametrize(
    "content_type",
    ['multipart/related; type="application/dicom"', 'multipart/related; boundary="a\x01b"'],
)
def test_a_missing_or_invalid_boundary_is_malformed(content_type: str) -> None:
    with pytest.raises(MalformedRequestError):
        boundary_of(content_type)


def test_too_large_names_the_limit() -> None:
    assert "1000 bytes" in str(too_large(1000))


class _Body:
    """What :meth:`Spool.receive` reads of a request: its body, in chunks."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    async def stream(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def _multipart(*parts: bytes) -> bytes:
    out = b"".join(b"\r\n--b\r\nContent-Type: application/dicom\r\n\r\n" + p for p in parts)
    return out + b"\r\n--b--\r\n"


def test_small_parts_stay_in_memory_and_larger_ones_go_to_files(tmp_path: Path) -> None:
    """No file is made (and deleted) for a small instance; the body's parts
    kept in memory stay within a bound."""
    small, medium, large = b"s" * 1000, b"m" * 900_000, b"L" * (3 * 1024 * 1024)
    posted = [small, large, *[medium] * 5, small]
    spool = Spool(tmp_path / "spool", None)
    body = _multipart(*posted)
    chunks = [body[start : start + 65536] for start in range(0, len(body), 65536)]
    parts = anyio.run(spool.receive, cast(Request, _Body(*chunks)), "b")
    assert [part.size for part in parts] == [len(p) for p in posted]
    # Beyond 1 MB a part goes to a file as it arrives; the others stay in
    # memory while the body's in memory fit in 4 MB (the fifth medium does not).
    in_memory = [part.path is None for part in parts]
    assert in_memory == [True, False, True, True, True, True, False, True]
    for part, expected in zip(parts, posted, strict=True):
        with part.open() as fp:
            assert fp.read() == expected
    assert len(list((tmp_path / "spool").iterdir())) == 2
    spool.discard()
    assert not list((tmp_path / "spool").iterdir())


def test_a_single_small_instance_makes_no_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", None)
    (part,) = anyio.run(spool.receive, cast(Request, _Body(b"x" * 100, b"y" * 100)), None)
    with part.open() as fp:
        assert fp.read() == b"x" * 100 + b"y" * 100
    assert not (tmp_path / "spool").exists()
