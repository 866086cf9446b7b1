"""Dates moved back by whole days, times of day and offsets kept."""

from __future__ import annotations

import pytest

from dicomweb_archive.deidentify.dates import DUMMY_DATE, shift_date, shift_datetime


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("20240301", 1, "20240229"),
        ("20240102 ", 365, "20230102"),
        ("2024", 1, DUMMY_DATE),
        ("20241301", 1, DUMMY_DATE),
    ],
)
def test_shift_date(value: str, days: int, expected: str) -> None:
    assert shift_date(value, days) == expected


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("20240301101500.25+0100", 1, "20240229101500.25+0100"),
        ("20240301", 10, "20240220"),
        ("202403", 800, "202203"),
        ("2024", 400, "2023"),
        ("garbage", 1, DUMMY_DATE),
    ],
)
def test_shift_datetime(value: str, days: int, expected: str) -> None:
    assert shift_datetime(value, days) == expected
