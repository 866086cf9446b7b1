"""A dataset as DICOM JSON and what the JSON refers to instead of holding it.

What both encoders share (pydicom's raw elements, :mod:`~dicomweb_archive.p10.jsonmodel`;
the fast path's, :mod:`~dicomweb_archive.p10.explicitjson`): which elements go in
the JSON, binary values inline or as bulk data, the character sets, how a
value that cannot be read fails.  Nothing here imports pydicom.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from dicomweb_archive.errors import MalformedDicomError, TruncatedDicomError
from dicomweb_archive.p10.bulkdata import BulkPolicy, BulkValue
from dicomweb_archive.p10.pixeldata import (
    EXTENDED_OFFSET_TABLE,
    EXTENDED_OFFSET_TABLE_LENGTHS,
    PixelDataElement,
)
from dicomweb_archive.p10.values import DEFAULT_ENCODINGS
from dicomweb_archive.types import JSONDataset

PIXEL_DATA = 0x7FE00010
TRAILING_PADDING = 0xFFFCFFFC
SPECIFIC_CHARACTER_SET = 0x00080005

#: Tags left out of the JSON: the encapsulation of one file is not metadata.
#: An exported file has a Basic Offset Table and no trailing padding instead.
ENCODING_TAGS = frozenset({EXTENDED_OFFSET_TABLE, EXTENDED_OFFSET_TABLE_LENGTHS, TRAILING_PADDING})


@dataclass
class EncodedDataset:
    """A dataset as DICOM JSON, and what the JSON refers to instead of holding it."""

    metadata: JSONDataset
    #: Values that left the JSON for their BulkDataURI, in the order met.
    bulk_data: list[BulkValue] = field(default_factory=list)
    #: The top-level Pixel Data element, still in the file.
    pixel_data: PixelDataElement | None = None
    #: Tag paths of the elements and items encoded with undefined length.
    undefined_length: list[str] = field(default_factory=list)
    #: The File Meta Information (group 0002), always inline.
    file_meta: JSONDataset | None = None


def in_json(tag: int, *, top: bool, file_meta: bool) -> bool:
    """Whether an element goes in the JSON: group 0002 in the file meta's only,
    no group lengths, not the encapsulation of the file (at the top level)."""
    return (
        (tag >> 16 == 0x0002) == file_meta
        and bool(tag & 0xFFFF)
        and not (top and tag in ENCODING_TAGS)
    )


def element_error(key: str, exc: Exception) -> TruncatedDicomError | MalformedDicomError:
    """What reading the value of the element ``key`` failing with ``exc`` means."""
    if isinstance(exc, EOFError):
        return TruncatedDicomError(f"element ({key[:4]},{key[4:]}): {exc}")
    return MalformedDicomError(f"element ({key[:4]},{key[4:]}) cannot be read: {exc}")


def charset_encodings(raw: bytes) -> list[str]:
    """The Python encodings of an encoded Specific Character Set value."""
    return encodings_of([t.strip() for t in raw.decode("ascii", "replace").split("\\")])


#: The Python encoding of each Specific Character Set term that stands alone
#: (no code extensions), as pydicom's ``python_encoding`` has it (the tests
#: compare them): a dataset naming one of these needs nothing of pydicom.
_SINGLE_TERMS = {
    "ISO_IR 6": "iso8859",
    "ISO_IR 13": "shift_jis",
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO_IR 126": "iso_ir_126",
    "ISO_IR 127": "iso_ir_127",
    "ISO_IR 138": "iso_ir_138",
    "ISO_IR 144": "iso_ir_144",
    "ISO_IR 148": "iso_ir_148",
    "ISO_IR 166": "iso_ir_166",
    "ISO_IR 192": "UTF8",
    "GB18030": "GB18030",
    "GBK": "GBK",
}


def encodings_of(terms: list[str]) -> list[str]:
    """The Python encodings of Specific Character Set defined terms: pydicom's
    conversion (code extensions, misspelled terms), unless one term it maps alone."""
    if not any(terms):
        return DEFAULT_ENCODINGS
    if len(terms) == 1 and terms[0] in _SINGLE_TERMS:
        return [_SINGLE_TERMS[terms[0]]]
    from pydicom.charset import convert_encodings

    return list(convert_encodings(terms if len(terms) > 1 else terms[0]))


def binary_json(
    encoded: EncodedDataset, policy: BulkPolicy, tag: int, vr: str, raw: bytes, path: str
) -> JSONDataset:
    """A binary value (little endian) inline, or as bulk data noted in ``encoded``."""
    if not raw:
        return {"vr": vr}
    if policy.is_bulk(tag, len(raw)):
        bulk = BulkValue.of(path, vr, raw)
        encoded.bulk_data.append(bulk)
        return {"vr": vr, "BulkDataURI": bulk.uri}
    return {"vr": vr, "InlineBinary": base64.b64encode(raw).decode("ascii")}
