"""A fast DICOM JSON → P10 encoder for the common case, without pydicom datasets.

:func:`encode_p10` writes the bytes pydicom's ``Dataset.from_json`` followed by
``dcmwrite(..., enforce_file_format=True)`` writes for the same instance (see
:func:`dicomweb_archive.export.p10.export_instance`), straight from the stored
DICOM JSON, in one pass and with no per-element objects.  It handles:

* little endian transfer syntaxes, explicit or implicit VR, not deflated;
* Specific Character Set absent, empty, or one single-byte or stand-alone
  multi-byte term (``ISO_IR 100``, ``ISO_IR 192``, ``GB18030``, …), in the
  dataset and in any sequence item;
* every standard VR, sequences and items with defined lengths computed or
  undefined lengths where ``info`` records them, encapsulated values;
* Pixel Data native, encapsulated (pydicom's :func:`~pydicom.encaps.encapsulate`,
  as the pydicom path) or one bulk value;
* the file meta group as ``dcmwrite`` completes it.

Anything else raises :class:`~dicomweb_archive.errors.FastPathUnsupportedError`
before a byte is returned, and the caller falls back to pydicom: big endian,
deflate, ISO 2022 code extensions, ambiguous or unknown VRs, values pydicom
would change (a short-length VR over 64 KiB becoming UN) or write only with a
warning (text that does not encode, replacement characters), and anything
else out of the ordinary.

One deliberate difference: a DS number whose shortest ``repr`` is longer than
the 16 characters DS allows (``123456789012345.0``) is written as pydicom's
:func:`~pydicom.valuerep.format_number_as_ds` makes it, a valid DS, where
``dcmwrite`` would write the over-long ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydicom import __version_info__ as _pydicom_version
from pydicom.charset import convert_encodings, custom_encoders, python_encoding
from pydicom.encaps import encapsulate
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR, format_number_as_ds

from dicomweb_archive import tags, uids
from dicomweb_archive.errors import FastPathUnsupportedError
from dicomweb_archive.p10.frames import TRAILING_BYTES
from dicomweb_archive.p10.values import BINARY_VRS, NUMBER_FORMATS
from dicomweb_archive.types import first_value

#: Reads a BulkDataURI: (tag key, VR, URI) → the value's little-endian bytes.
BulkReader = Callable[[str, str, str], bytes]
#: Reads the stored frames 1..count of the instance (payloads, views allowed).
FrameReader = Callable[[int], list[bytes | memoryview]]
#: The top-level Pixel Data: VR, the value in parts, whether of undefined length.
PixelValue = tuple[str, list[bytes | memoryview], bool]

PIXEL_DATA = 0x7FE00010
_ITEM = b"\xfe\xff\x00\xe0"
_ITEM_BIG_ENDIAN = b"\xff\xfe\xe0\x00"
_ITEM_DELIMITER = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_UNDEFINED = 0xFFFFFFFF

_LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_KNOWN_VRS = frozenset(str(vr) for vr in STANDARD_VR)
#: VRs ``dcmwrite`` encodes with Specific Character Set (``write_text``, ``write_PN``).
_CHARSET_TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC"})
#: VRs ``dcmwrite`` encodes with its default encoding (``write_string`` and kin).
_PLAIN_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UR"})
_INTEGER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
#: SS elements whose first value ``dcmwrite`` writes unsigned (pydicom's list).
_LUT_DESCRIPTORS = frozenset({0x00281101, 0x00281102, 0x00281103, 0x00283002})
_VALUE_KEYS = ("Value", "InlineBinary", "BulkDataURI")
#: pydicom's default encoding ("iso8859"), which Python spells latin-1.
_DEFAULT_ENCODING = "latin_1"
_PADDING = {"UI": b"\x00"}
_IMPLEMENTATION_VERSION_NAME = f"PYDICOM {'.'.join(_pydicom_version)}"


def _unsupported(reason: str) -> FastPathUnsupportedError:
    return FastPathUnsupportedError(reason)


def _encoding_of(element: Mapping[str, Any]) -> str:
    """The Python codec of a Specific Character Set element, if the fast path has it."""
    terms = element.get("Value") or []
    if not isinstance(terms, list):
        raise _unsupported("Specific Character Set is not a list")
    if len(terms) > 1:
        raise _unsupported("Specific Character Set with code extensions")
    term = terms[0] if terms else None
    if term is None or term == "":
        return _DEFAULT_ENCODING
    if not isinstance(term, str) or term.startswith("ISO 2022") or term not in python_encoding:
        raise _unsupported(f"Specific Character Set {term!r}")
    [codec] = convert_encodings(term)
    if codec in custom_encoders:  # JIS X 0201 and friends: pydicom's own encoders
        raise _unsupported(f"Specific Character Set {term!r}")
    return _DEFAULT_ENCODING if codec == "iso8859" else codec


def _encode(text: str, codec: str) -> bytes:
    try:
        return text.encode(codec)
    except UnicodeError as exc:  # pydicom would write replacement characters
        raise _unsupported(f"text that {codec} cannot encode: {exc}") from exc


def _texts(values: list[Any]) -> list[str]:
    out = []
    for value in values:
        if value is None:
            out.append("")
        elif isinstance(value, str):
            out.append(value)
        else:
            raise _unsupported(f"a {type(value).__name__} in a text value")
    return out


def _ds(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _unsupported(f"DS value {value!r}")
    number = float(value)
    text = repr(number)
    if len(text) > 16:
        if not math.isfinite(number):
            raise _unsupported(f"DS value {value!r}")
        whole = str(int(number)) if number.is_integer() else ""
        text = whole if whole and len(whole) <= 16 else format_number_as_ds(number)
    return text


def _is(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _unsupported(f"IS value {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise _unsupported(f"IS value {value!r}")
    return str(int(value))


def _person_name(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, dict):
        raise _unsupported("a PN value that is not an object")
    components = [value.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")]
    if not all(isinstance(c, str) for c in components):
        raise _unsupported("a PN component that is not a string")
    # pydicom drops trailing empty components ("Doe^J==" is "Doe^J").
    return "=".join(components).rstrip("=")


class _Encoder:
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
                raise _unsupported("Specific Character Set is not an object")
            codec = _encoding_of(charset)
        ordered: list[tuple[int, str | None]] = []
        for key in document:
            try:
                tag = int(key, 16)
            except ValueError as exc:
                raise _unsupported(f"tag {key!r}") from exc
            if len(key) != 8 or tag < 0:
                raise _unsupported(f"tag {key!r}")
            ordered.append((tag, key))
        for tag in raw or {}:
            ordered.append((tag, None))
        if pixel is not None:
            ordered.append((PIXEL_DATA, None))
        ordered.sort(key=lambda entry: entry[0])
        previous = -1
        for tag, name in ordered:
            if tag == previous:
                raise _unsupported(f"tag {tag:08X} twice")
            previous = tag
            group = tag >> 16
            if (group == 0x0002) != self.file_meta or group == 0x0000:
                raise _unsupported(f"element ({group:04X},{tag & 0xFFFF:04X}) in the dataset")
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
                raise _unsupported(f"element {name} is not an object")
            self._element(out, tag, element, codec, f"{prefix}{tag:08X}")

    def _element(
        self, out: bytearray, tag: int, element: Mapping[str, Any], codec: str, path: str
    ) -> None:
        vr = element.get("vr")
        if not isinstance(vr, str) or vr not in _KNOWN_VRS:
            raise _unsupported(f"element {path} has VR {vr!r}")
        present = [k for k in _VALUE_KEYS if k in element]
        if len(present) > 1:
            raise _unsupported(f"element {path} has {' and '.join(present)}")
        kind = present[0] if present else None
        if vr == "SQ":
            if kind not in (None, "Value"):
                raise _unsupported(f"sequence {path} with {kind}")
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
            raise _unsupported(f"element {path} ({vr}) with {kind}")
        else:
            values = element["Value"]
            if not isinstance(values, list):
                raise _unsupported(f"element {path}: Value is not a list")
            value = self._value(tag, vr, values, codec, path) if values else b""
        if len(value) % 2:
            value += _PADDING.get(vr, b" ")
        self._header(out, tag, vr, len(value), undefined=False)
        out += value

    def _value(self, tag: int, vr: str, values: list[Any], codec: str, path: str) -> bytes:
        fmt = NUMBER_FORMATS.get(vr)
        if fmt is not None:
            if any(
                v is None or isinstance(v, bool) or not isinstance(v, int | float) for v in values
            ):
                raise _unsupported(f"element {path}: a {vr} value that is not a number")
            numbers: list[int | float]
            if vr in _INTEGER_VRS:
                if any(isinstance(v, float) and not v.is_integer() for v in values):
                    raise _unsupported(f"element {path}: a fraction in {vr}")
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
                raise _unsupported(f"element {path}: {exc}") from exc
        if vr == "PN":
            text = "\\".join(_person_name(v) for v in values)
            return _encode(text, codec)
        if vr == "AT":
            out = bytearray()
            for value in values:
                if not isinstance(value, str) or len(value) != 8:
                    raise _unsupported(f"element {path}: AT value {value!r}")
                try:
                    number = int(value, 16)
                except ValueError as exc:
                    raise _unsupported(f"element {path}: AT value {value!r}") from exc
                out += struct.pack("<HH", number >> 16, number & 0xFFFF)
            return bytes(out)
        if vr == "DS":
            return "\\".join(_ds(v) for v in values).encode("ascii")
        if vr == "IS":
            return "\\".join(_is(v) for v in values).encode("ascii")
        text = "\\".join(_texts(values))
        if vr in _CHARSET_TEXT_VRS:
            return _encode(text, codec)
        if vr in _PLAIN_TEXT_VRS or vr == "UI":
            return _encode(text, _DEFAULT_ENCODING)
        raise _unsupported(f"element {path}: VR {vr}")

    def _binary_value(
        self, tag: int, vr: str, element: Mapping[str, Any], kind: str | None, path: str
    ) -> bytes:
        if kind is None:
            return b""
        if kind == "Value":
            raise _unsupported(f"element {path} ({vr}) with a Value")
        value = element[kind]
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if not isinstance(value, str):
            raise _unsupported(f"element {path}: {kind} is not a string")
        if kind == "InlineBinary":
            try:
                return base64.b64decode(value)
            except binascii.Error as exc:
                raise _unsupported(f"element {path}: {exc}") from exc
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
                raise _unsupported(f"element {path}: big-endian items")
            # As the pydicom path restores them: only values that are items.
            undefined = path in self.undefined and vr in ("OB", "OW", "UN") and value[:4] == _ITEM
        if undefined:
            if value[:4] != _ITEM:
                raise _unsupported(f"element {tag:08X}: undefined length but no items")
            self._header(out, tag, vr, _UNDEFINED, undefined=True)
            out += value
            if len(value) % 2:
                out += b"\x00"
            out += _SEQUENCE_DELIMITER
            return
        if len(value) % 2:
            if vr == "UN":  # pydicom writes an odd UN value as it is
                raise _unsupported(f"element {tag:08X}: UN of odd length")
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
            raise _unsupported("Pixel Data of undefined length but no items")
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
            raise _unsupported(f"sequence {path}: Value is not a list")
        body = bytearray()
        for index, item in enumerate(items):
            if item is None:
                item = {}
            if not isinstance(item, dict):
                raise _unsupported(f"sequence {path}: item {index} is not an object")
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
                raise _unsupported(f"element {tag:08X} ({vr}) of {length} bytes")
            out += struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _odd_numbers(
    document: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[int, tuple[str, bytes]]]:
    """Top-level IS/DS elements holding text, written as the text (as the pydicom path)."""
    kept: dict[str, Any] = {}
    raw: dict[int, tuple[str, bytes]] = {}
    for key, element in document.items():
        if (
            isinstance(element, dict)
            and element.get("vr") in ("IS", "DS")
            and any(isinstance(v, str) for v in element.get("Value") or [])
        ):
            text = "\\".join("" if v is None else str(v) for v in element["Value"])
            value = text.encode("ascii", "replace")
            value += b" " * (len(value) % 2)
            raw[int(key, 16)] = (element["vr"], value)
        else:
            kept[key] = element
    return kept, raw


def _file_meta(
    stored: Mapping[str, Any] | None, document: Mapping[str, Any], ts: str, sop: str
) -> bytes:
    """Group 0002 as ``dcmwrite(enforce_file_format=True)`` writes it."""
    meta: dict[str, Any] = {
        key: element
        for key, element in (stored or {}).items()
        if key.upper() != tags.FileMetaInformationGroupLength
    }
    if any(not key.upper().startswith("0002") for key in meta):
        raise _unsupported("file meta holds elements outside group 0002")
    meta = {key.upper(): element for key, element in meta.items()}
    meta[tags.TransferSyntaxUID] = {"vr": "UI", "Value": [ts]}
    sop_class = first_value(document, tags.SOPClassUID) if tags.SOPClassUID in document else None
    if tags.SOPClassUID not in document:
        sop_class = first_value(meta, tags.MediaStorageSOPClassUID)
    instance = first_value(document, tags.SOPInstanceUID)
    if instance and instance != sop:  # dcmwrite prefers the dataset's own UID
        sop = instance
    if not sop_class or not isinstance(sop_class, str) or not isinstance(sop, str):
        raise _unsupported("no SOP Class UID for the file meta")
    meta[tags.MediaStorageSOPClassUID] = {"vr": "UI", "Value": [sop_class]}
    meta[tags.MediaStorageSOPInstanceUID] = {"vr": "UI", "Value": [sop]}
    version = meta.get(tags.FileMetaInformationVersion)
    if not isinstance(version, dict) or not any(version.get(k) for k in _VALUE_KEYS):
        meta[tags.FileMetaInformationVersion] = {"vr": "OB", "InlineBinary": "AAE="}
    if not first_value(meta, tags.ImplementationClassUID):
        meta[tags.ImplementationClassUID] = {"vr": "UI", "Value": [str(PYDICOM_IMPLEMENTATION_UID)]}
    if tags.ImplementationVersionName not in meta:
        meta[tags.ImplementationVersionName] = {"vr": "SH", "Value": [_IMPLEMENTATION_VERSION_NAME]}

    def no_bulk(tag: str, vr: str, uri: str) -> bytes:
        raise _unsupported("bulk data in the file meta")

    body = bytearray()
    _Encoder(implicit=False, undefined=(), bulk=no_bulk, file_meta=True).dataset(
        meta, _DEFAULT_ENCODING, "", body
    )
    return struct.pack("<HH2sHL", 0x0002, 0x0000, b"UL", 4, len(body)) + bytes(body)


def encode_p10(
    document: Mapping[str, Any],
    info: Mapping[str, Any],
    sop: str,
    *,
    pixel_element: Mapping[str, Any] | None,
    bulk: BulkReader,
    frames: FrameReader,
) -> bytes:
    """The P10 bytes of one instance, or :class:`FastPathUnsupportedError`.

    ``document`` is the instance's DICOM JSON without Pixel Data and without
    Available Transfer Syntax UID; ``pixel_element`` is its Pixel Data JSON
    (or ``None``); ``info`` the instance's ``info.json.gz``; ``sop`` its SOP
    Instance UID.  ``bulk`` and ``frames`` read bulk data and frames.
    """
    ts = info.get("transferSyntaxUID")
    encoding = info.get("encoding") or {}
    if not isinstance(ts, str):
        raise _unsupported("no transfer syntax")
    syntax = UID(ts)
    try:
        if not syntax.is_transfer_syntax or syntax.is_private:
            raise _unsupported(f"transfer syntax {ts}")
        if not syntax.is_little_endian or syntax.is_deflated:
            raise _unsupported(f"transfer syntax {ts}")
        compressed = bool(syntax.is_compressed)
    except ValueError as exc:
        raise _unsupported(f"transfer syntax {ts}: {exc}") from exc
    if not encoding.get("littleEndian") or encoding.get("deflated"):
        raise _unsupported("big endian or deflated source")
    preamble = b"\x00" * 128
    if info.get("preamble"):
        preamble = base64.b64decode(info["preamble"])
        if len(preamble) != 128:
            raise _unsupported("a preamble that is not 128 bytes")

    pixel_info = info.get("pixelData")
    pixel: Callable[[], PixelValue] | None = None
    if pixel_element is not None and pixel_info:
        vr = pixel_info.get("vr")
        if vr not in ("OB", "OW") or pixel_info.get("byteSwapped"):
            raise _unsupported(f"Pixel Data as {vr}")
        if pixel_info.get(TRAILING_BYTES):
            raise _unsupported("bytes after the last frame")
        count = int(pixel_info.get("numberOfFrames") or 0)
        if pixel_info.get("encapsulated") and count:
            if not compressed:
                raise _unsupported("encapsulated Pixel Data in a native transfer syntax")
        elif count:
            if compressed:
                raise _unsupported("native Pixel Data in a compressed transfer syntax")
        elif not isinstance(pixel_element.get("BulkDataURI"), str):
            raise _unsupported("Pixel Data with neither frames nor a bulk value")

        def pixel_value() -> PixelValue:
            assert pixel_info is not None and pixel_element is not None
            if pixel_info.get("encapsulated") and count:
                fragments = pixel_info.get("fragments") or []
                per_frame = max((len(f) for f in fragments), default=1)
                value = encapsulate(
                    [bytes(f) for f in frames(count)],
                    fragments_per_frame=per_frame,
                    has_bot=bool(pixel_info.get("basicOffsetTable", True)),
                )
                return "OB", [value], compressed
            if count:
                return str(vr), frames(count), compressed
            uri = pixel_element["BulkDataURI"]
            return str(vr), [bulk(tags.PixelData, str(vr), uri)], compressed

        pixel = pixel_value

    kept, raw = _odd_numbers(document)
    encoder = _Encoder(
        implicit=ts == uids.ImplicitVRLittleEndian,
        undefined=info.get("undefinedLength") or [],
        bulk=bulk,
    )
    body = bytearray(preamble)
    body += b"DICM"
    body += _file_meta(info.get("fileMeta"), document, ts, sop)
    spill: list[bytes | memoryview] = []
    encoder.dataset(kept, _DEFAULT_ENCODING, "", body, pixel=pixel, raw=raw, spill=spill)
    spill.append(bytes(body))
    return b"".join(spill)
