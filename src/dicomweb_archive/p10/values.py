"""DICOM JSON values (PS3.18 F.2) from encoded bytes or from pydicom's values.

Also the tables both directions share: which VRs are binary, the struct format of
each binary number VR, and the word width big-endian values are swapped in.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from dicomweb_archive.types import JSONDataset

BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_SINGLE_TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})
_CHARSET_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN"})
#: struct format of one value of each binary number VR.
NUMBER_FORMATS = {
    "US": "H",
    "SS": "h",
    "UL": "L",
    "SL": "l",
    "UV": "Q",
    "SV": "q",
    "FL": "f",
    "FD": "d",
}
#: Word width of binary VRs: the unit a big-endian value is byte-swapped in.
WORD_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
DEFAULT_ENCODINGS = ["iso8859"]
#: Text VRs whose values are strings (not numbers, tags or names).
_PLAIN_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "SH", "ST", "TM", "UC", "UI"}
    | {"UR", "UT"}
)


def swap_bytes(data: bytes, width: int) -> bytes:
    """Reverse the byte order of every ``width``-byte word of ``data``."""
    if width <= 1 or not data:
        return data
    import numpy as np

    usable = len(data) - len(data) % width
    words = np.frombuffer(data, dtype=f">u{width}", count=usable // width)
    return words.astype(f"<u{width}").tobytes() + data[usable:]


def _decode(raw: bytes, encodings: list[str]) -> str:
    """Text in the dataset's character sets, ISO 2022 escapes included: pydicom's
    decoding, imported by the first text that is not plain ASCII (the fast path
    imports nothing of pydicom for files that hold none)."""
    from pydicom.charset import decode_bytes
    from pydicom.valuerep import TEXT_VR_DELIMS

    return decode_bytes(raw, encodings, TEXT_VR_DELIMS)


def _split_text(vr: str, raw: bytes, encodings: list[str]) -> list[str]:
    if vr in _CHARSET_VRS and (not raw.isascii() or b"\x1b" in raw):
        text = _decode(raw, encodings)
    elif raw.isascii():
        text = raw.decode("ascii")
    else:
        text = raw.decode("latin-1")
    if vr in _SINGLE_TEXT_VRS:
        return [text.rstrip("\x00 ")]
    if vr == "UI":
        return [v.strip("\x00 ") for v in text.split("\\")]
    values = text.rstrip("\x00 ").split("\\")
    return [v.strip(" \x00") for v in values]


def _number(vr: str, text: str) -> int | float | str | None:
    text = text.strip()
    if not text:
        return None
    try:
        if vr == "IS":
            try:
                return int(text)
            except ValueError:
                number = float(text)
                if number.is_integer():
                    return int(number)
                return text
        number = float(text)
        if not math.isfinite(number):
            return text
        return number
    except ValueError:
        return text


def _person_name(text: str) -> dict[str, str] | None:
    components = text.split("=")
    while components and not components[-1]:
        components.pop()
    if not components:
        return None
    names = ("Alphabetic", "Ideographic", "Phonetic")
    return {names[i]: c for i, c in enumerate(components[:3]) if c}


def json_from_bytes(vr: str, raw: bytes, endian: str, encodings: list[str]) -> JSONDataset:
    if not raw:
        return {"vr": vr}
    if vr in _PLAIN_TEXT_VRS:
        return _plain_text_json(vr, raw, encodings)
    fmt = NUMBER_FORMATS.get(vr)
    if fmt is not None:
        size = struct.calcsize(endian + fmt)
        count = len(raw) // size
        if count == 0:
            return {"vr": vr}
        values: list[Any] = list(struct.unpack(f"{endian}{count}{fmt}", raw[: count * size]))
        if vr in ("FL", "FD"):
            values = [v if math.isfinite(v) else None for v in values]
        return {"vr": vr, "Value": values}
    if vr == "AT":
        count = len(raw) // 4
        pairs = struct.unpack(f"{endian}{count * 2}H", raw[: count * 4])
        tags = [f"{pairs[i]:04X}{pairs[i + 1]:04X}" for i in range(0, len(pairs), 2)]
        return {"vr": vr, "Value": tags} if tags else {"vr": vr}
    if vr == "PN":
        if not raw.isascii() or b"\x1b" in raw:
            text = _decode(raw.rstrip(b"\x00 "), encodings)
        else:
            text = raw.decode("ascii").rstrip("\x00 ")
        return _pn_json([t.strip() for t in text.split("\\")])
    texts = _split_text(vr, raw, encodings)
    return _text_json(vr, texts)


def _plain_text_json(vr: str, raw: bytes, encodings: list[str]) -> JSONDataset:
    """:func:`json_from_bytes` of a value of one plain ASCII text, the common case, in one step.

    The same result as :func:`_split_text` then :func:`_text_json`; anything
    else (several values, other characters) takes that way.
    """
    if not raw.isascii() or b"\\" in raw or b"\x1b" in raw:
        return _text_json(vr, _split_text(vr, raw, encodings))
    text = raw.decode("ascii")
    text = text.rstrip("\x00 ") if vr in _SINGLE_TEXT_VRS else text.strip("\x00 ")
    if vr == "IS" or vr == "DS":
        number = _number(vr, text)
        return {"vr": vr} if number is None else {"vr": vr, "Value": [number]}
    return {"vr": vr, "Value": [text]} if text else {"vr": vr}


def _text_json(vr: str, texts: list[str]) -> JSONDataset:
    if vr in ("IS", "DS"):
        values: list[Any] = [_number(vr, t) for t in texts]
    else:
        values = [t if t else None for t in texts]
    if all(v is None for v in values):
        return {"vr": vr}
    return {"vr": vr, "Value": values}


def _pn_json(texts: list[str]) -> JSONDataset:
    values = [_person_name(t) for t in texts]
    if all(v is None for v in values):
        return {"vr": "PN"}
    return {"vr": "PN", "Value": values}


def json_from_element(vr: str, value: Any) -> JSONDataset:
    """JSON of an element pydicom has already converted."""
    from pydicom.multival import MultiValue
    from pydicom.valuerep import PersonName

    if value is None or value == "" or value == b"":
        return {"vr": vr}
    items = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    if not items:
        return {"vr": vr}
    if vr == "PN":
        return _pn_json([str(v) if v is not None else "" for v in items])
    if vr == "AT":
        return {"vr": vr, "Value": [f"{int(v):08X}" for v in items]}
    if vr in NUMBER_FORMATS:
        if isinstance(value, bytes):
            return json_from_bytes(vr, value, "<", DEFAULT_ENCODINGS)
        return {"vr": vr, "Value": [v for v in items if v is not None]}
    texts = []
    for v in items:
        if v is None:
            texts.append("")
        elif isinstance(v, PersonName):
            texts.append(str(v))
        elif vr in ("IS", "DS") and hasattr(v, "original_string"):
            texts.append(str(v.original_string or v))
        else:
            texts.append(str(v).strip(" \x00") if vr not in _SINGLE_TEXT_VRS else str(v))
    return _text_json(vr, texts)
