"""DICOM JSON Model (PS3.18 Annex F) straight from a parsed P10 dataset.

pydicom parses the file into raw elements; this module turns their encoded bytes
into DICOM JSON without building pydicom's value objects, which is what makes the
converter fast.  Elements whose VR needs context (implicit VR, ``UN`` standing for
a known VR, ambiguous VRs such as ``US or SS``) and sequences go through pydicom's
own conversion first; every value then takes the same path to JSON.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.fileutil import read_undefined_length_value
from pydicom.filewriter import correct_ambiguous_vr_element
from pydicom.hooks import raw_element_vr
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import SequenceDelimiterTag
from pydicom.valuerep import TEXT_VR_DELIMS, PersonName

from dicomweb_archive.errors import MalformedDicomError, TruncatedDicomError
from dicomweb_archive.types import JSONDataset

PIXEL_DATA = 0x7FE00010
EXTENDED_OFFSET_TABLE = 0x7FE00001
EXTENDED_OFFSET_TABLE_LENGTHS = 0x7FE00002
TRAILING_PADDING = 0xFFFCFFFC
SPECIFIC_CHARACTER_SET = 0x00080005

#: Tags left out of the JSON: the encapsulation of one file is not metadata.
#: They are kept in the instance's ``info`` so the file can be regenerated.
ENCODING_TAGS = frozenset({EXTENDED_OFFSET_TABLE, EXTENDED_OFFSET_TABLE_LENGTHS, TRAILING_PADDING})

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
_DEFAULT_ENCODINGS = ["iso8859"]


def swap_bytes(data: bytes, width: int) -> bytes:
    """Reverse the byte order of every ``width``-byte word of ``data``."""
    if width <= 1 or not data:
        return data
    import numpy as np

    usable = len(data) - len(data) % width
    words = np.frombuffer(data, dtype=f">u{width}", count=usable // width)
    return words.astype(f"<u{width}").tobytes() + data[usable:]


@dataclass(frozen=True)
class BulkPolicy:
    """Which binary values leave the JSON for a BulkDataURI (seed 002 thresholds)."""

    public_bulk_size: int = 131074
    private_bulk_size: int = 64

    def is_bulk(self, tag: int, length: int) -> bool:
        limit = self.private_bulk_size if (tag >> 16) & 1 else self.public_bulk_size
        return length > limit


#: Receives (tag path, VR, little-endian bytes) and returns the BulkDataURI.
BulkWriter = Callable[[str, str, bytes], str]
#: Receives the top-level Pixel Data element and its VR, returns its JSON.
PixelDataHandler = Callable[[RawDataElement | DataElement, str], JSONDataset]


@dataclass
class EncodingNotes:
    """What the JSON cannot say about the original encoding (for ``info``)."""

    undefined_length: list[str]

    def __init__(self) -> None:
        self.undefined_length = []


class JSONEncoder:
    """Encodes one parsed dataset, reading deferred values from ``fp``."""

    def __init__(
        self,
        fp: BinaryIO,
        *,
        is_little_endian: bool,
        policy: BulkPolicy,
        write_bulk: BulkWriter,
        pixel_data: PixelDataHandler,
        file_size: int | None = None,
    ) -> None:
        self._fp = fp
        self._le = is_little_endian
        self._endian = "<" if is_little_endian else ">"
        self._policy = policy
        self._write_bulk = write_bulk
        self._pixel_data = pixel_data
        self._file_size = file_size
        self.notes = EncodingNotes()

    # -- datasets ---------------------------------------------------------------

    def encode(self, ds: Dataset) -> JSONDataset:
        """The JSON of a top-level dataset (group 0002 is never included)."""
        return self._dataset(ds, _DEFAULT_ENCODINGS, "", top=True)

    def encode_file_meta(self, file_meta: Dataset) -> JSONDataset:
        """The JSON of a File Meta Information group (always little endian)."""
        return self._dataset(file_meta, _DEFAULT_ENCODINGS, "", top=False, file_meta=True)

    def _dataset(
        self,
        ds: Dataset,
        parent_encodings: list[str],
        path: str,
        *,
        top: bool,
        file_meta: bool = False,
    ) -> JSONDataset:
        encodings = parent_encodings
        if SPECIFIC_CHARACTER_SET in ds:
            encodings = self._charset(ds)
        out: JSONDataset = {}
        # The elements as pydicom holds them (raw ones stay raw, deferred values
        # on disk), without a Tag() and get_item() call for each.
        for base_tag, item in list(ds.items()):
            tag = int(base_tag)
            if (tag >> 16 == 0x0002) != file_meta or not tag & 0xFFFF:
                continue
            if top and tag in ENCODING_TAGS:
                continue
            key = f"{tag:08X}"
            try:
                if top and tag == PIXEL_DATA:
                    vr = self._resolve_vr(ds, item, deferred=item.value is None)
                    out[key] = self._pixel_data(item, vr)
                else:
                    out[key] = self._element(ds, item, encodings, path + key)
            except (TruncatedDicomError, MalformedDicomError):
                raise
            except EOFError as exc:
                raise TruncatedDicomError(f"element ({key[:4]},{key[4:]}): {exc}") from exc
            except Exception as exc:  # pydicom raises many types on bad data
                raise MalformedDicomError(
                    f"element ({key[:4]},{key[4:]}) cannot be read: {exc}"
                ) from exc
        return out

    def _charset(self, ds: Dataset) -> list[str]:
        item = ds.get_item(SPECIFIC_CHARACTER_SET, keep_deferred=True)
        if isinstance(item, RawDataElement):
            raw = item.value or b""
            terms = [t.strip() for t in raw.decode("ascii", "replace").split("\\")]
        else:
            value = item.value
            terms = list(value) if isinstance(value, MultiValue | list) else [value]
        terms = [t for t in (str(t).strip() for t in terms if t is not None)]
        if not any(terms):
            return _DEFAULT_ENCODINGS
        return list(convert_encodings(terms if len(terms) > 1 else terms[0]))

    # -- elements ---------------------------------------------------------------

    def _resolve_vr(
        self, ds: Dataset, item: RawDataElement | DataElement, *, deferred: bool
    ) -> str:
        vr = item.VR
        if isinstance(item, DataElement):
            if vr is None or " or " in vr:
                correct_ambiguous_vr_element(item, ds, self._le)
            return str(item.VR)
        if vr is not None and vr != "UN" and " or " not in vr:
            return str(vr)
        if deferred:
            # Large values: resolve from the dictionary without reading them.
            try:
                vr = dictionary_VR(item.tag)
            except KeyError:
                return "UN" if item.VR is None else str(item.VR)
            if " or " in vr:
                return "OW" if "OW" in vr else vr.split(" or ")[0]
            return str(vr)
        data: dict[str, Any] = {}
        raw_element_vr(item, data, encoding=None, ds=ds)
        vr = data.get("VR") or "UN"
        if " or " in vr:
            elem = ds[item.tag]
            correct_ambiguous_vr_element(elem, ds, self._le)
            vr = str(elem.VR)
            if " or " in vr:
                vr = "OW" if "OW" in vr else vr.split(" or ")[0]
        return str(vr)

    def _element(
        self,
        ds: Dataset,
        item: RawDataElement | DataElement,
        encodings: list[str],
        path: str,
    ) -> JSONDataset:
        deferred = isinstance(item, RawDataElement) and item.value is None
        vr = self._resolve_vr(ds, item, deferred=deferred)
        if vr == "SQ":
            return self._sequence(ds, item, encodings, path)
        if isinstance(item, RawDataElement):
            if deferred:
                raw = self.read_deferred(item)
            else:
                raw = item.value or b""
                if item.length != 0xFFFFFFFF and len(raw) < item.length:
                    raise TruncatedDicomError(
                        f"element ({item.tag >> 16:04X},{item.tag & 0xFFFF:04X}) "
                        f"announces {item.length} bytes, file holds {len(raw)}"
                    )
            if item.length == 0xFFFFFFFF:
                self.notes.undefined_length.append(path)
            if vr in BINARY_VRS:
                return self._binary(int(item.tag), vr, raw, path)
            return _json_from_bytes(vr, raw, self._endian, encodings)
        if item.is_undefined_length:
            self.notes.undefined_length.append(path)
        if vr in BINARY_VRS:
            value = item.value
            if value is None or isinstance(value, MultiValue | list):
                return {"vr": vr}
            return self._binary(int(item.tag), vr, bytes(value), path)
        return _json_from_element(vr, item.value)

    def _sequence(
        self,
        ds: Dataset,
        item: RawDataElement | DataElement,
        encodings: list[str],
        path: str,
    ) -> JSONDataset:
        elem = ds[item.tag] if isinstance(item, RawDataElement) else item
        seq = elem.value
        if getattr(elem, "is_undefined_length", False) or (
            isinstance(item, RawDataElement) and item.length == 0xFFFFFFFF
        ):
            self.notes.undefined_length.append(path)
        if not seq:
            return {"vr": "SQ"}
        if not isinstance(seq, Sequence | list):
            raise MalformedDicomError(f"sequence {path} holds no items")
        items = []
        for index, child in enumerate(seq):
            if getattr(child, "is_undefined_length_sequence_item", False):
                self.notes.undefined_length.append(f"{path}/{index}")
            items.append(self._dataset(child, encodings, f"{path}/{index}/", top=False))
        return {"vr": "SQ", "Value": items}

    def _binary(self, tag: int, vr: str, raw: bytes, path: str) -> JSONDataset:
        if not raw:
            return {"vr": vr}
        if not self._le and vr in WORD_WIDTH:
            raw = swap_bytes(raw, WORD_WIDTH[vr])
        if self._policy.is_bulk(tag, len(raw)):
            return {"vr": vr, "BulkDataURI": self._write_bulk(path, vr, raw)}
        return {"vr": vr, "InlineBinary": base64.b64encode(raw).decode("ascii")}

    def read_deferred(self, item: RawDataElement) -> bytes:
        """Read a value pydicom left on disk."""
        self._fp.seek(item.value_tell)
        if item.length == 0xFFFFFFFF:
            value = read_undefined_length_value(self._fp, self._le, SequenceDelimiterTag, None)
            return value or b""
        if self._file_size is not None and item.value_tell + item.length > (self._file_size):
            raise TruncatedDicomError(
                f"element ({item.tag >> 16:04X},{item.tag & 0xFFFF:04X}) announces "
                f"{item.length} bytes at offset {item.value_tell}, past the end of "
                f"the file ({self._file_size} bytes)"
            )
        data = self._fp.read(item.length)
        if len(data) < item.length:
            raise TruncatedDicomError(
                f"element ({item.tag >> 16:04X},{item.tag & 0xFFFF:04X}) announces "
                f"{item.length} bytes, file holds {len(data)}"
            )
        return data


# -- values ------------------------------------------------------------------------


def _split_text(vr: str, raw: bytes, encodings: list[str]) -> list[str]:
    if vr in _CHARSET_VRS and (not raw.isascii() or b"\x1b" in raw):
        text = decode_bytes(raw, encodings, TEXT_VR_DELIMS)
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


def _json_from_bytes(vr: str, raw: bytes, endian: str, encodings: list[str]) -> JSONDataset:
    if not raw:
        return {"vr": vr}
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
            text = decode_bytes(raw.rstrip(b"\x00 "), encodings, TEXT_VR_DELIMS)
        else:
            text = raw.decode("ascii").rstrip("\x00 ")
        return _pn_json([t.strip() for t in text.split("\\")])
    texts = _split_text(vr, raw, encodings)
    return _text_json(vr, texts)


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


def _json_from_element(vr: str, value: Any) -> JSONDataset:
    """JSON of an element pydicom has already converted."""
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
            return _json_from_bytes(vr, value, "<", _DEFAULT_ENCODINGS)
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
