from __future__ import annotations

import pytest

from dicomweb_archive.media import parse_accept, parse_accept_parameter, parse_media_range


@pytest.mark.parametrize(
    "header",
    [
        'multipart/related; type="application/octet-stream"; transfer-syntax="*"',
        "multipart/related; type=application/octet-stream; transfer-syntax=*",
        'Multipart/Related ;TYPE = "application/octet-stream" ; Transfer-Syntax = *',
    ],
)
def test_quoted_and_unquoted_parameters_are_equal(header: str) -> None:
    [media_range] = parse_accept([header])
    assert media_range.media_type == "multipart/related"
    assert media_range.part_type == "application/octet-stream"
    assert media_range.transfer_syntax == "*"


def test_transfer_syntax_inside_a_quoted_type_is_not_a_parameter() -> None:
    media_range = parse_media_range(
        'multipart/related; type="image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"'
    )
    assert media_range is not None
    assert media_range.transfer_syntax is None
    assert media_range.part_type == "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"


def test_ordering_by_quality_and_invalid_ranges_ignored() -> None:
    ranges = parse_accept(
        ["foo, application/dicom+json;q=0.5, */*;q=0.1", "image/jhc;q=0.9, text/x;q=0, a/b;q=x"]
    )
    assert [r.media_type for r in ranges] == ["image/jphc", "application/dicom+json", "*/*"]
    assert parse_accept(["undefined"]) == []


def test_accept_parameter_refuses_wildcards() -> None:
    ranges = parse_accept_parameter(["image/*,application/dicom+json", "*/*"])
    assert [r.media_type for r in ranges] == ["application/dicom+json"]


def test_transfer_syntax_in_camel_case_is_the_same_parameter() -> None:
    [media_range] = parse_accept(["image/jls;transferSyntax=1.2.840.10008.1.2.4.80"])
    assert media_range.transfer_syntax == "1.2.840.10008.1.2.4.80"
