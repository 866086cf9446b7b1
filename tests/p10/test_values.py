"""DICOM JSON values from encoded bytes and from pydicom's values."""

from __future__ import annotations

import struct

import pytest
from pydicom.valuerep import PersonName

from dicomweb_archive.p10.values import (
    DEFAULT_ENCODINGS,
    json_from_bytes,
    json_from_element,
    swap_bytes,
)


def test_swap_bytes_per_word_keeps_a_trailing_remainder() -> None:
    assert swap_bytes(b"\x01\x02\x03\x04\x05", 2) == b"\x02\x01\x04\x03\x05"
    assert swap_bytes(b"\x01\x02\x03\x04", 4) == b"\x04\x03\x02\x01"
    assert swap_bytes(b"\x01\x02", 1) == b"\x01\x02"
    assert swap_bytes(b"", 8) == b""


@pytest.mark.parametrize("endian", ["<", ">"])
def test_numbers_in_either_byte_order(endian: str) -> None:
    raw = struct.pack(f"{endian}2H", 1, 513)
    assert json_from_bytes("US", raw, endian, DEFAULT_ENCODINGS) == {"vr": "US", "Value": [1, 513]}
    raw = struct.pack(f"{endian}2d", 1.5, float("nan"))
    assert json_from_bytes("FD", raw, endian, DEFAULT_ENCODINGS) == {
        "vr": "FD",
        "Value": [1.5, None],
    }


def test_text_values() -> None:
    enc = DEFAULT_ENCODINGS
    assert json_from_bytes("CS", b"A\\\\B ", "<", enc) == {"vr": "CS", "Value": ["A", None, "B"]}
    assert json_from_bytes("DS", b"1.50\\abc ", "<", enc) == {"vr": "DS", "Value": [1.5, "abc"]}
    assert json_from_bytes("IS", b"2\\3.0", "<", enc) == {"vr": "IS", "Value": [2, 3]}
    assert json_from_bytes("LT", b"a\\b  ", "<", enc) == {"vr": "LT", "Value": ["a\\b"]}
    assert json_from_bytes("UI", b"1.2.3\x00", "<", enc) == {"vr": "UI", "Value": ["1.2.3"]}
    assert json_from_bytes("AT", b"\x08\x00\x18\x00", "<", enc) == {
        "vr": "AT",
        "Value": ["00080018"],
    }
    assert json_from_bytes("SH", b"  ", "<", enc) == {"vr": "SH"}
    assert json_from_bytes("SH", b"", "<", enc) == {"vr": "SH"}


def test_person_names_split_into_groups() -> None:
    assert json_from_bytes("PN", b"Doe^Jane==Do^Jein\\^Bob ", "<", DEFAULT_ENCODINGS) == {
        "vr": "PN",
        "Value": [{"Alphabetic": "Doe^Jane", "Phonetic": "Do^Jein"}, {"Alphabetic": "^Bob"}],
    }
    assert json_from_element("PN", PersonName("Doe^John")) == {
        "vr": "PN",
        "Value": [{"Alphabetic": "Doe^John"}],
    }


def test_values_pydicom_converted() -> None:
    assert json_from_element("US", [1, 2]) == {"vr": "US", "Value": [1, 2]}
    assert json_from_element("US", b"\x01\x00") == {"vr": "US", "Value": [1]}
    assert json_from_element("AT", [0x00080018]) == {"vr": "AT", "Value": ["00080018"]}
    assert json_from_element("CS", "") == {"vr": "CS"}
    assert json_from_element("LO", ["a", None]) == {"vr": "LO", "Value": ["a", None]}
