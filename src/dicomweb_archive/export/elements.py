"""DICOM JSON datasets as little-endian data elements, the fast P10 path's structure.

:class:`DatasetEncoder` writes elements in tag order, sequences and items
(defined lengths computed, undefined where the instance's ``info`` recorded
them), binary and encapsulated values and the top-level Pixel Data, as
``dcmwrite`` does; values come from :mod:`dicomweb_archive.export.values`.
Anything out of the ordinary raises
:class:`~dicomweb_archive.errors.FastPathUnsupportedError`.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR

from dicomweb_archive import tags
from dicomweb_archive.export.values import encode_values, encoding_of, unsupported
from dicomweb_archive.p10.values import BINARY_VRS

#: Reads a BulkDataURI: (tag key, VR, URI) → the value's little-endian bytes.
BulkReader = Callable[[str, str, str], bytes]
#: The top-level Pixel Data: VR, the value in parts, whether of undefined length.
PixelValue = tuple[str, list[bytes | memoryview], bool]

PIXEL_DATA = 0x7FE00010
#: The keys of a DICOM JSON element that hold its value.
VALUE_KEYS = ("Value", "InlineBinary", "BulkDataURI")
_ITEM = b"\xfe\xff\x00\xe0"
_ITEM_BIG_ENDIAN = b"\xff\xfe\xe0\x00"
_ITEM_DELIMITER = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_UNDEFINED = 0xFFFFFFFF

_LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_KNOWN_VRS = frozenset(str(vr) for vr in STANDARD_VR)
_PADDING = {"UI": b"\x00"}


class DatasetEncoder:
    """Encodes JSON datasets in one little-endian encoding."""

    def __init__(
        self,
        *,
        implicit: bool,
        undefined: Sequence[str],
        bulk: BulkReader,
        file_meta: bool = False,
    ) -> None:
        self.implicit = implicit
        #: Group 0002 only (the file meta), or anything but groups 0000 and 0002.
        self.file_meta = file_meta
        self.undefined = frozenset(undefined)
        self.bulk = bulk

    # -- structure --------------------------------------------------------------

    def dataset(
        self,
        document: Mapping[str, Any],
        codec: str,
        prefix: str,
        out: bytearray,
        *,
        pixel: Callable[[], PixelValue] | None = None,
        raw: Mapping[int, tuple[str, bytes]] | None = None,
        spill: list[bytes | memoryview] | None = None,
    ) -> None:
        """Append the elements of ``document``, in tag order, to ``out``.

        ``pixel`` supplies the top-level Pixel Data; ``raw`` holds values
        already encoded (tag → VR, bytes).  With ``spill`` (top level only),
        Pixel Data is not copied into ``out``: what ``out`` holds so far and
        the value's parts go to ``spill``, and ``out`` starts again empty.
        """
        charset = document.get(tags.SpecificCharacterSet)
        if charset is not None:
            if not isinstance(charset, dict):
                raise unsupported("Specific Character Set is not an object")
            codec = encoding_of(charset)
        ordered: list[tuple[int, str | None]] = []
        for key in document:
            try:
                tag = int(key, 16)
            except ValueError as exc:
                raise unsupported(f"tag {key!r}") from exc
            if len(key) != 8 or tag < 0:
                raise unsupported(f"tag {key!r}")
            ordered.append((tag, key))
        for tag in raw or {}:
            ordered.append((tag, None))
        if pixel is not None:
            ordered.append((PIXEL_DATA, None))
        ordered.sort(key=lambda entry: entry[0])
        previous = -1
        for tag, name in ordered:
            if tag == previous:
                raise unsupported(f"tag {tag:08X} twice")
            previous = tag
            group = tag >> 16
            if (group == 0x0002) != self.file_meta or group == 0x0000:
                raise unsupported(f"element ({group:04X},{tag & 0xFFFF:04X}) in the dataset")
            if tag & 0xFFFF == 0 and group > 6:
                continue  # group lengths are never written
            if name is None:
                if raw is not None and tag in raw:
                    vr, value = raw[tag]
                    self._header(out, tag, vr, len(value), undefined=False)
                    out += value
                else:
                    assert pixel is not None and spill is not None
                    self._pixel_data(out, spill, *pixel())
                continue
            element = document[name]
            if not isinstance(element, dict):
                raise unsupported(f"element {name} is not an object")
            self._element(out, tag, element, codec, f"{prefix}{tag:08X}")

    def _element(
        self, out: bytearray, tag: int, element: Mapping[str, Any], codec: str, path: str
    ) -> None:
        vr = element.get("vr")
        if not isinstance(vr, str) or vr not in _KNOWN_VRS:
            raise unsupported(f"element {path} has VR {vr!r}")
        present = [k for k in VALUE_KEYS if k in element]
        if len(present) > 1:
            raise unsupported(f"element {path} has {' and '.join(present)}")
        kind = present[0] if present else None
        if vr == "SQ":
            if kind not in (None, "Value"):
                raise unsupported(f"sequence {path} with {kind}")
            self._sequence(out, tag, element.get("Value") or [], codec, path)
            return
        if vr in BINARY_VRS:
            self._binary_element(
                out, tag, vr, self._binary_value(tag, vr, element, kind, path), path=path
            )
            return
        if kind is None:
            value = b""
        elif kind != "Value":
            raise unsupported(f"element {path} ({vr}) with {kind}")
        else:
            values = element["Value"]
            if not isinstance(values, list):
                raise unsupported(f"element {path}: Value is not a list")
            value = encode_values(tag, vr, values, codec, path) if values else b""
        if len(value) % 2:
            value += _PADDING.get(vr, b" ")
        self._header(out, tag, vr, len(value), undefined=False)
        out += value

    def _binary_value(
        self, tag: int, vr: str, element: Mapping[str, Any], kind: str | None, path: str
    ) -> bytes:
        if kind is None:
            return b""
        if kind == "Value":
            raise unsupported(f"element {path} ({vr}) with a Value")
        value = element[kind]
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, str):
            raise unsupported(f"element {path}: {kind} is not a string")
        if kind == "InlineBinary":
            try:
                return base64.b64decode(value)
            except binascii.Error as exc:
                raise unsupported(f"element {path}: {exc}") from exc
        return self.bulk(f"{tag:08X}", vr, value)

    def _binary_element(
        self,
        out: bytearray,
        tag: int,
        vr: str,
        value: bytes,
        *,
        path: str | None = None,
        undefined: bool | None = None,
    ) -> None:
        if undefined is None:
            if path in self.undefined and value[:4] == _ITEM_BIG_ENDIAN:
                raise unsupported(f"element {path}: big-endian items")
            # As the pydicom path restores them: only values that are items.
            undefined = path in self.undefined and vr in ("OB", "OW", "UN") and value[:4] == _ITEM
        if undefined:
            if value[:4] != _ITEM:
                raise unsupported(f"element {tag:08X}: undefined length but no items")
            self._header(out, tag, vr, _UNDEFINED, undefined=True)
            out += value
            if len(value) % 2:
                out += b"\x00"
            out += _SEQUENCE_DELIMITER
            return
        if len(value) % 2:
            if vr == "UN":  # pydicom writes an odd UN value as it is
                raise unsupported(f"element {tag:08X}: UN of odd length")
            value += b"\x00"
        self._header(out, tag, vr, len(value), undefined=False)
        out += value

    def _pixel_data(
        self,
        out: bytearray,
        spill: list[bytes | memoryview],
        vr: str,
        parts: list[bytes | memoryview],
        undefined: bool,
    ) -> None:
        length = sum(len(p) for p in parts)
        if undefined and (not parts or bytes(parts[0][:4]) != _ITEM):
            raise unsupported("Pixel Data of undefined length but no items")
        self._header(
            out,
            PIXEL_DATA,
            vr,
            _UNDEFINED if undefined else length + length % 2,
            undefined=undefined,
        )
        spill.append(bytes(out))
        out.clear()
        spill.extend(parts)
        if length % 2:
            out += b"\x00"
        if undefined:
            out += _SEQUENCE_DELIMITER

    def _sequence(self, out: bytearray, tag: int, items: Any, codec: str, path: str) -> None:
        if not isinstance(items, list):
            raise unsupported(f"sequence {path}: Value is not a list")
        body = bytearray()
        for index, item in enumerate(items):
            if item is None:
                item = {}
            if not isinstance(item, dict):
                raise unsupported(f"sequence {path}: item {index} is not an object")
            item_path = f"{path}/{index}"
            start = len(body)
            body += _ITEM
            body += b"\xff\xff\xff\xff"
            self.dataset(item, codec, f"{item_path}/", body)
            if item_path in self.undefined:
                body += _ITEM_DELIMITER
            else:
                struct.pack_into("<L", body, start + 4, len(body) - start - 8)
        if path in self.undefined:
            self._header(out, tag, "SQ", _UNDEFINED, undefined=True)
            out += body
            out += _SEQUENCE_DELIMITER
        else:
            self._header(out, tag, "SQ", len(body), undefined=False)
            out += body

    def _header(self, out: bytearray, tag: int, vr: str, length: int, *, undefined: bool) -> None:
        if self.implicit:
            out += struct.pack("<HHL", tag >> 16, tag & 0xFFFF, length)
        elif vr in _LONG_VRS:
            out += struct.pack("<HH2s2xL", tag >> 16, tag & 0xFFFF, vr.encode(), length)
        else:
            if undefined or length > 0xFFFF:  # pydicom would turn the VR into UN
                raise unsupported(f"element {tag:08X} ({vr}) of {length} bytes")
            out += struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)
