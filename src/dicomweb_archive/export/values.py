"""Element values as the fast P10 path writes them: text, numbers, names.

Each function returns what ``dcmwrite`` writes for the same DICOM JSON value,
or raises :class:`~dicomweb_archive.errors.FastPathUnsupportedError` where
pydicom would write something else (see :mod:`dicomweb_archive.export.writer`).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

from pydicom.charset import convert_encodings, custom_encoders, python_encoding
from pydicom.valuerep import format_number_as_ds

from dicomweb_archive.errors import FastPathUnsupportedError
from dicomweb_archive.p10.values import NUMBER_FORMATS

#: pydicom's default encoding ("iso8859"), which Python spells latin-1.
DEFAULT_ENCODING = "latin_1"
#: VRs ``dcmwrite`` encodes with Specific Character Set (``write_text``, ``write_PN``).
_CHARSET_TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC"})
#: VRs ``dcmwrite`` encodes with its default encoding (``write_string`` and kin).
_PLAIN_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UR"})
_INTEGER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
#: SS elements whose first value ``dcmwrite`` writes unsigned (pydicom's list).
_LUT_DESCRIPTORS = frozenset({0x00281101, 0x00281102, 0x00281103, 0x00283002})


def unsupported(reason: str) -> FastPathUnsupportedError:
    return FastPathUnsupportedError(reason)


def encoding_of(element: Mapping[str, Any]) -> str:
    """The Python codec of a Specific Character Set element, if the fast path has it."""
    terms = element.get("Value") or []
    if not isinstance(terms, list):
        raise unsupported("Specific Character Set is not a list")
    if len(terms) > 1:
        raise unsupported("Specific Character Set with code extensions")
    term = terms[0] if terms else None
    if term is None or term == "":
        return DEFAULT_ENCODING
    if not isinstance(term, str) or term.startswith("ISO 2022") or term not in python_encoding:
        raise unsupported(f"Specific Character Set {term!r}")
    [codec] = convert_encodings(term)
    if codec in custom_encoders:  # JIS X 0201 and friends: pydicom's own encoders
        raise unsupported(f"Specific Character Set {term!r}")
    return DEFAULT_ENCODING if codec == "iso8859" else codec


def encode_text(text: str, codec: str) -> bytes:
    try:
        return text.encode(codec)
    except UnicodeError as exc:  # pydicom would write replacement characters
        raise unsupported(f"text that {codec} cannot encode: {exc}") from exc


def texts(values: list[Any]) -> list[str]:
    out = []
    for value in values:
        if value is None:
            out.append("")
        elif isinstance(value, str):
            out.append(value)
        else:
            raise unsupported(f"a {type(value).__name__} in a text value")
    return out


def decimal_string(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise unsupported(f"DS value {value!r}")
    number = float(value)
    text = repr(number)
    if len(text) > 16:
        if not math.isfinite(number):
            raise unsupported(f"DS value {value!r}")
        whole = str(int(number)) if number.is_integer() else ""
        text = whole if whole and len(whole) <= 16 else format_number_as_ds(number)
    return text


def integer_string(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise unsupported(f"IS value {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise unsupported(f"IS value {value!r}")
    return str(int(value))


def person_name(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, dict):
        raise unsupported("a PN value that is not an object")
    components = [value.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")]
    if not all(isinstance(c, str) for c in components):
        raise unsupported("a PN component that is not a string")
    # pydicom drops trailing empty components ("Doe^J==" is "Doe^J").
    return "=".join(components).rstrip("=")


def encode_values(tag: int, vr: str, values: list[Any], codec: str, path: str) -> bytes:
    """The bytes of a non-binary element's ``Value`` list (before padding)."""
    fmt = NUMBER_FORMATS.get(vr)
    if fmt is not None:
        if any(v is None or isinstance(v, bool) or not isinstance(v, int | float) for v in values):
            raise unsupported(f"element {path}: a {vr} value that is not a number")
        numbers: list[int | float]
        if vr in _INTEGER_VRS:
            if any(isinstance(v, float) and not v.is_integer() for v in values):
                raise unsupported(f"element {path}: a fraction in {vr}")
            numbers = [int(v) for v in values]
        else:
            numbers = [float(v) for v in values]
        try:
            if vr == "SS" and tag in _LUT_DESCRIPTORS:
                return struct.pack("<H", numbers[0]) + struct.pack(
                    f"<{len(numbers) - 1}h", *numbers[1:]
                )
            return struct.pack(f"<{len(numbers)}{fmt}", *numbers)
        except struct.error as exc:
            raise unsupported(f"element {path}: {exc}") from exc
    if vr == "PN":
        text = "\\".join(person_name(v) for v in values)
        return encode_text(text, codec)
    if vr == "AT":
        out = bytearray()
        for value in values:
            if not isinstance(value, str) or len(value) != 8:
                raise unsupported(f"element {path}: AT value {value!r}")
            try:
                number = int(value, 16)
            except ValueError as exc:
                raise unsupported(f"element {path}: AT value {value!r}") from exc
            out += struct.pack("<HH", number >> 16, number & 0xFFFF)
        return bytes(out)
    if vr == "DS":
        return "\\".join(decimal_string(v) for v in values).encode("ascii")
    if vr == "IS":
        return "\\".join(integer_string(v) for v in values).encode("ascii")
    text = "\\".join(texts(values))
    if vr in _CHARSET_TEXT_VRS:
        return encode_text(text, codec)
    if vr in _PLAIN_TEXT_VRS or vr == "UI":
        return encode_text(text, DEFAULT_ENCODING)
    raise unsupported(f"element {path}: VR {vr}")
