from __future__ import annotations

import pytest

from dicomweb_archive.model.temporal import is_date, is_datetime, is_time


@pytest.mark.parametrize("text", ["20240102", "20240229", "19000101", "00010101"])
def test_dates(text: str) -> None:
    assert is_date(text)


@pytest.mark.parametrize(
    "text",
    [
        "20241301",
        "20240231",
        "20230229",
        "20240100",
        "2024010",
        "2024-01-02",
        "2024٠١٠٢",
        "20240102\n",
    ],
)
def test_not_dates(text: str) -> None:
    assert not is_date(text)


@pytest.mark.parametrize("text", ["10", "1015", "101500", "101500.5", "235960.123456", "000000"])
def test_times(text: str) -> None:
    assert is_time(text)


@pytest.mark.parametrize("text", ["24", "2599", "1060", "101561", "1", "10:15", "101500.", "１０"])
def test_not_times(text: str) -> None:
    assert not is_time(text)


@pytest.mark.parametrize(
    "text", ["2024", "202401", "20240102", "2024010210", "20240102101500.25", "20240102101500+0100"]
)
def test_datetimes(text: str) -> None:
    assert is_datetime(text)


@pytest.mark.parametrize(
    "text",
    ["202413", "20240230", "2024010225", "202401021060", "20240102+1500", "20240102+0160", "24"],
)
def test_not_datetimes(text: str) -> None:
    assert not is_datetime(text)
