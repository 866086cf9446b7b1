from __future__ import annotations

import pytest

from dicomweb_archive.numerals import MAX_DIGITS, parse_decimal, parse_integer, parse_unsigned

LENIENT = ["", " 1", "1 ", "+1", "1_0", "١٠", "１０", "1.0", "0x1", "1e3", "nan", "inf", "1\n"]


@pytest.mark.parametrize(
    ("text", "number"), [("0", 0), ("007", 7), ("1" * MAX_DIGITS, int("1" * MAX_DIGITS))]
)
def test_unsigned(text: str, number: int) -> None:
    assert parse_unsigned(text) == number


@pytest.mark.parametrize("text", [*LENIENT, "-1", "1" * (MAX_DIGITS + 1)])
def test_unsigned_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="ASCII digits"):
        parse_unsigned(text)


def test_integer() -> None:
    assert [parse_integer(t) for t in ("-5", "+5", "5")] == [-5, 5, 5]
    for text in ("-", "--5", "١", "1_0", " 5"):
        with pytest.raises(ValueError):
            parse_integer(text)


def test_decimal() -> None:
    assert [parse_decimal(t) for t in ("2.5", "-.5", "1.", "+1e3", "1E-2")] == [
        2.5,
        -0.5,
        1.0,
        1000.0,
        0.01,
    ]
    for text in ("nan", "inf", "-inf", "1_0.5", "٢.٥", ".", "e3", "1e999", "2.5 "):
        with pytest.raises(ValueError):
            parse_decimal(text)
