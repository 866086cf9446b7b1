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
from collections.abc import Callable, Mapping
from typing import Any

from pydicom.encaps import encapsulate
from pydicom.uid import UID

from dicomweb_archive import tags, uids
from dicomweb_archive.export.elements import BulkReader, DatasetEncoder, PixelValue
from dicomweb_archive.export.filemeta import file_meta_group
from dicomweb_archive.export.values import DEFAULT_ENCODING, unsupported
from dicomweb_archive.p10.frames import TRAILING_BYTES

__all__ = ["BulkReader", "FrameReader", "encode_p10"]

#: Reads the stored frames 1..count of the instance (payloads, views allowed).
FrameReader = Callable[[int], list[bytes | memoryview]]


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
    ts, compressed = _transfer_syntax(info)
    preamble = _preamble(info)
    pixel_info = info.get("pixelData")
    pixel = None
    if pixel_element is not None and pixel_info:
        pixel = _pixel_value(pixel_element, pixel_info, compressed, bulk, frames)
    kept, raw = _odd_numbers(document)
    encoder = DatasetEncoder(
        implicit=ts == uids.ImplicitVRLittleEndian,
        undefined=info.get("undefinedLength") or [],
        bulk=bulk,
    )
    body = bytearray(preamble)
    body += b"DICM"
    body += file_meta_group(info.get("fileMeta"), document, ts, sop)
    spill: list[bytes | memoryview] = []
    encoder.dataset(kept, DEFAULT_ENCODING, "", body, pixel=pixel, raw=raw, spill=spill)
    spill.append(bytes(body))
    return b"".join(spill)


def _transfer_syntax(info: Mapping[str, Any]) -> tuple[str, bool]:
    """The instance's transfer syntax, when the fast path writes it; whether compressed."""
    ts = info.get("transferSyntaxUID")
    encoding = info.get("encoding") or {}
    if not isinstance(ts, str):
        raise unsupported("no transfer syntax")
    syntax = UID(ts)
    try:
        if not syntax.is_transfer_syntax or syntax.is_private:
            raise unsupported(f"transfer syntax {ts}")
        if not syntax.is_little_endian or syntax.is_deflated:
            raise unsupported(f"transfer syntax {ts}")
        compressed = bool(syntax.is_compressed)
    except ValueError as exc:
        raise unsupported(f"transfer syntax {ts}: {exc}") from exc
    if not encoding.get("littleEndian") or encoding.get("deflated"):
        raise unsupported("big endian or deflated source")
    return ts, compressed


def _preamble(info: Mapping[str, Any]) -> bytes:
    if not info.get("preamble"):
        return b"\x00" * 128
    preamble = base64.b64decode(info["preamble"])
    if len(preamble) != 128:
        raise unsupported("a preamble that is not 128 bytes")
    return preamble


def _pixel_value(
    pixel_element: Mapping[str, Any],
    pixel_info: Mapping[str, Any],
    compressed: bool,
    bulk: BulkReader,
    frames: FrameReader,
) -> Callable[[], PixelValue]:
    """What reads the top-level Pixel Data, checked now, read when it is written."""
    vr = pixel_info.get("vr")
    if vr not in ("OB", "OW") or pixel_info.get("byteSwapped"):
        raise unsupported(f"Pixel Data as {vr}")
    if pixel_info.get(TRAILING_BYTES):
        raise unsupported("bytes after the last frame")
    count = int(pixel_info.get("numberOfFrames") or 0)
    encapsulated = bool(pixel_info.get("encapsulated")) and bool(count)
    if encapsulated and not compressed:
        raise unsupported("encapsulated Pixel Data in a native transfer syntax")
    if count and not encapsulated and compressed:
        raise unsupported("native Pixel Data in a compressed transfer syntax")
    if not count and not isinstance(pixel_element.get("BulkDataURI"), str):
        raise unsupported("Pixel Data with neither frames nor a bulk value")

    def pixel_value() -> PixelValue:
        if encapsulated:
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

    return pixel_value
