"""The STOW-RS request's Content-Type: a multipart boundary, or a single instance."""

from __future__ import annotations

import pytest

from dicomweb_archive.errors import MalformedRequestError, UnsupportedMediaTypeError
from dicomweb_archive.server.stow.body import boundary_of, too_large


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
