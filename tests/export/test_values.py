"""Element values as the fast path writes them: what pydicom writes, or a refusal."""

from __future__ import annotations

import struct

import pytest
from pydicom.dataelem import DataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element

from dicomweb_archive.errors import FastPathUnsupportedError
from dicomweb_archive.export.values import (
    DEFAULT_ENCODING,
    decimal_string,
    encode_values,
    encoding_of,
    integer_string,
    person_name,
)


def _pydicom_value(tag: int, vr: str, value: object) -> bytes:
    """The value bytes ``dcmwrite`` writes for one element (explicit VR little endian)."""
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_data_element(out, DataElement(tag, vr, value))
    written = out.getvalue()
    header = 12 if vr in ("OB", "OW", "UN", "SQ", "UT", "UC", "UR") else 8
    return written[header:]


def test_character_sets() -> None:
    assert encoding_of({"vr": "CS"}) == DEFAULT_ENCODING
    assert encoding_of({"vr": "CS", "Value": ["ISO_IR 100"]}) == DEFAULT_ENCODING
    assert encoding_of({"vr": "CS", "Value": ["ISO_IR 192"]}) == "UTF8"
    for refused in (["ISO 2022 IR 87"], ["", "ISO 2022 IR 100"], ["NOT A CHARSET"]):
        with pytest.raises(FastPathUnsupportedError, match="Specific Character Set"):
            encoding_of({"vr": "CS", "Value": refused})


def test_numbers_as_text() -> None:
    assert decimal_string(0.5) == "0.5"
    assert decimal_string(3) == "3.0"
    # Longer than DS allows: the whole number, else pydicom's valid DS.
    assert decimal_string(123456789012345.0) == "123456789012345"
    assert len(decimal_string(1 / 3)) <= 16
    assert integer_string(7.0) == "7"
    for bad in (True, "7", 7.5):
        with pytest.raises(FastPathUnsupportedError):
            integer_string(bad)
    for bad in (True, "0.5", None):
        with pytest.raises(FastPathUnsupportedError):
            decimal_string(bad)


def test_person_names_drop_trailing_empty_groups() -> None:
    assert person_name({"Alphabetic": "Doe^J", "Ideographic": "", "Phonetic": ""}) == "Doe^J"
    assert person_name({"Alphabetic": "Doe", "Phonetic": "do"}) == "Doe==do"
    assert person_name(None) == ""
    with pytest.raises(FastPathUnsupportedError):
        person_name("Doe^J")


@pytest.mark.parametrize(
    ("tag", "vr", "values", "pydicom_value"),
    [
        (0x00280010, "US", [512], 512),
        (0x00181310, "US", [0, 256, 256, 0], [0, 256, 256, 0]),
        (0x00283002, "SS", [40000, 0, 16], [40000, 0, 16]),  # LUT Descriptor: first unsigned
        (0x00209165, "AT", ["00100010"], [0x00100010]),
        (0x00100010, "PN", [{"Alphabetic": "Doe^Jane"}], "Doe^Jane"),
        (0x00081030, "LO", ["Chest"], "Chest"),
        (0x00180050, "DS", [2.5], "2.5"),
        (0x00200013, "IS", [12], "12"),
        (0x00080018, "UI", ["1.2.3"], "1.2.3"),
    ],
)
def test_values_are_those_pydicom_writes(
    tag: int, vr: str, values: list[object], pydicom_value: object
) -> None:
    value = encode_values(tag, vr, values, DEFAULT_ENCODING, f"{tag:08X}")
    padded = value + (b"\x00" if vr == "UI" else b" ") * (len(value) % 2)
    assert padded == _pydicom_value(tag, vr, pydicom_value)


def test_values_pydicom_would_change_are_refused() -> None:
    with pytest.raises(FastPathUnsupportedError, match="fraction"):
        encode_values(0x00280010, "US", [1.5], DEFAULT_ENCODING, "00280010")
    with pytest.raises(FastPathUnsupportedError, match="not a number"):
        encode_values(0x00280010, "US", [None], DEFAULT_ENCODING, "00280010")
    with pytest.raises(FastPathUnsupportedError):
        encode_values(0x00280010, "US", [70000], DEFAULT_ENCODING, "00280010")
    with pytest.raises(FastPathUnsupportedError, match="cannot encode"):
        encode_values(0x00081030, "LO", ["\u4e2d"], DEFAULT_ENCODING, "00081030")
    assert struct.unpack("<H", encode_values(0x00280010, "US", [2.0], "UTF8", "x")) == (2,)
