"""Explicit VR Little Endian files read straight from their bytes: the converter's fast path.

Most files a conversion meets are Explicit VR Little Endian, whose element
headers a linear scan reads without building pydicom's objects.
:func:`scan_file` reads the preamble, the File Meta Information and every
element of the dataset (sequences and their items included) into plain
tuples, leaving the top-level Pixel Data in the file.

It takes a file only where it reads it exactly as pydicom does.  For anything
else it answers None, and the caller reads the file with pydicom, which stays
the reference: another transfer syntax, a value of undefined length other than
a sequence or an item, ``UN`` and unknown VRs (their reading depends on the
dictionary), elements out of order or outside the dataset's groups, a
delimiter out of place, a value running past its item or the file, a
Specific Character Set pydicom's reader fails on (another VR than ``CS``, a
null byte), and whatever the reader refuses (no ``DICM`` prefix, a DICOMDIR,
missing or invalid UIDs).  ``tests/p10/test_explicit.py`` checks both paths
against each other on every reference file, ``test_explicit_fuzz.py`` on
seeded damaged copies of them.
"""

from __future__ import annotations

import bisect
import operator
import struct
from typing import BinaryIO, NamedTuple

from dicomweb_archive import uids

PIXEL_DATA = 0x7FE00010
ITEM = 0xFFFEE000
ITEM_DELIMITER = 0xFFFEE00D
SEQUENCE_DELIMITER = 0xFFFEE0DD
UNDEFINED_LENGTH = 0xFFFFFFFF
EXPLICIT_VR_LITTLE_ENDIAN = b"1.2.840.10008.1.2.1"
TRANSFER_SYNTAX_UID = 0x00020010
SPECIFIC_CHARACTER_SET = 0x00080005
MEDIA_STORAGE_SOP_CLASS_UID = 0x00020002
MEDIA_STORAGE_DIRECTORY = b"1.2.840.10008.1.3.10"
#: The instance's UIDs: (tag, required), as the reader checks them.
SOP_CLASS_UID = 0x00080016
INSTANCE_UIDS = ((SOP_CLASS_UID, False), (0x0020000D, True), (0x0020000E, True), (0x00080018, True))
#: Reads start with this much of the file: the header of most files.
_CHUNK = 16 * 1024
#: The first group of a dataset's own elements; lower ones are left to pydicom
#: (its command set reading takes group 0000, the file meta group 0002).
_FIRST_GROUP = 0x0008

#: VRs with a 2-byte length and those with a 4-byte one (PS3.5 7.1.2, as
#: pydicom's ``EXPLICIT_VR_LENGTH_16`` and ``_32``: tests/p10/test_explicit.py
#: compares them; listed here so that the fast path does not import pydicom);
#: ``UN`` is left to pydicom, whose reading depends on the dictionary.
SHORT_LENGTH_VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN"}
    | {"SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"}
)
LONG_LENGTH_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
_SHORT = {vr.encode("ascii"): vr for vr in SHORT_LENGTH_VRS}
_LONG = {vr.encode("ascii"): vr for vr in LONG_LENGTH_VRS if vr != "UN"}
_HEADER = struct.Struct("<HH2sH")
_LENGTH = struct.Struct("<L")
_ITEM_HEADER = struct.Struct("<LL")
#: Makes a named tuple from a tuple of its fields without its ``__new__``'s
#: Python frame: a third of the cost of each element the scan reads.
_new_tuple = tuple.__new__
_TAG = operator.itemgetter(0)


class Item(NamedTuple):
    """One item of a sequence."""

    undefined_length: bool
    elements: list[Element]


class SequenceValue(NamedTuple):
    undefined_length: bool
    items: list[Item]


class Element(NamedTuple):
    """One element as encoded: its value's bytes, or a sequence's items."""

    tag: int
    vr: str
    value: bytes | SequenceValue


class PixelDataPosition(NamedTuple):
    """The top-level Pixel Data, left in the file."""

    vr: str
    #: The offset of its value in the file.
    offset: int
    length: int


class ScannedFile(NamedTuple):
    """An Explicit VR Little Endian P10 file as the fast path read it."""

    preamble: bytes
    #: The File Meta Information group (0002), in file order.
    file_meta: list[Element]
    #: The dataset's elements in file order (ascending tags), Pixel Data's value left out.
    elements: list[Element]
    pixel_data: PixelDataPosition | None
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str


class _Declined(Exception):
    """The file is left to pydicom."""


def scan_file(fp: BinaryIO, size: int, *, defer_size: int) -> ScannedFile | None:
    """The file read by the fast path, or None when it is left to pydicom.

    ``defer_size`` is the size above which pydicom leaves a top-level value on
    disk: a sequence that large is left to pydicom too.
    """
    try:
        return _Scanner(fp, size, defer_size).file()
    except _Declined:
        return None


def uid_text(value: bytes) -> str:
    """A UID value as the reader takes it."""
    return value.decode("ascii", "replace").strip("\x00 ")


class _Scanner:
    """The file's bytes, read as the scan needs them; positions are the file's offsets."""

    def __init__(self, fp: BinaryIO, size: int, defer_size: int) -> None:
        self.fp = fp
        self.size = size
        self.defer_size = defer_size
        #: ``data`` holds the file's bytes from offset ``base`` on.
        self.base = 0
        self.pixel_data: PixelDataPosition | None = None
        fp.seek(0)
        self.data = fp.read(min(size, _CHUNK))

    def need(self, end: int) -> None:
        """Have the file's bytes up to ``end`` in ``data``."""
        have = self.base + len(self.data)
        if end <= have:
            return
        if end > self.size:
            raise _Declined  # past the end of the file: pydicom says what is wrong
        self.fp.seek(have)
        more = self.fp.read(max(end - have, _CHUNK))
        if have + len(more) < end:
            raise _Declined  # the file is shorter than it was
        self.data += more

    def file(self) -> ScannedFile:
        self.need(132)
        if self.data[128:132] != b"DICM":
            raise _Declined
        preamble = self.data[:128]
        file_meta, position = self.file_meta(132)
        values = {e.tag: e.value for e in file_meta if e.vr == "UI"}
        syntax = values.get(TRANSFER_SYNTAX_UID)
        if not isinstance(syntax, bytes) or syntax.rstrip(b"\x00") != EXPLICIT_VR_LITTLE_ENDIAN:
            raise _Declined
        if any(e.tag == MEDIA_STORAGE_SOP_CLASS_UID and e.vr != "UI" for e in file_meta):
            raise _Declined
        sop_class = values.get(MEDIA_STORAGE_SOP_CLASS_UID, b"")
        if isinstance(sop_class, bytes) and sop_class.strip(b"\x00 ") == MEDIA_STORAGE_DIRECTORY:
            raise _Declined
        elements, _ = self.elements(position, None, top=True)
        if not elements or elements[0].tag >> 16 < _FIRST_GROUP:
            raise _Declined
        study, series, sop = _instance_uids(elements)
        return ScannedFile(preamble, file_meta, elements, self.pixel_data, study, series, sop)

    # -- element headers ------------------------------------------------------------

    def header(self, position: int) -> tuple[int, str, int, int]:
        """The tag, VR, value length and value offset of the element at ``position``."""
        self.need(position + 8)
        at = position - self.base
        group, number, code, length = _HEADER.unpack_from(self.data, at)
        vr = _SHORT.get(code)
        if vr is not None:
            return group << 16 | number, vr, length, position + 8
        vr = _LONG.get(code)
        if vr is None:
            raise _Declined  # UN, an unknown VR, or not explicit VR at all
        self.need(position + 12)
        (length,) = _LENGTH.unpack_from(self.data, at + 8)
        return group << 16 | number, vr, length, position + 12

    def value(self, offset: int, length: int) -> bytes:
        self.need(offset + length)
        at = offset - self.base
        return self.data[at : at + length]

    # -- datasets -------------------------------------------------------------------

    def file_meta(self, position: int) -> tuple[list[Element], int]:
        """The group 0002 elements from ``position``, and where the dataset starts."""
        elements: list[Element] = []
        last = -1
        while position + 8 <= self.size:
            self.need(position + 6)
            if _HEADER.unpack_from(self.data, position - self.base)[0] != 0x0002:
                break
            tag, vr, length, offset = self.header(position)
            if tag <= last or vr == "SQ" or length == UNDEFINED_LENGTH:
                raise _Declined
            elements.append(Element(tag, vr, self.value(offset, length)))
            last, position = tag, offset + length
        return elements, position

    def elements(
        self, position: int, end: int | None, *, top: bool = False
    ) -> tuple[list[Element], int]:
        """A dataset's elements from ``position``, and the position after them.

        They end at ``end``, else at their item's delimiter, or at the end of the
        file for the ``top`` level (whose Pixel Data is noted, not read).  One
        loop with the header decoded in place: this is the converter's hot path.
        """
        elements: list[Element] = []
        append = elements.append
        unpack, short = _HEADER.unpack_from, _SHORT.get
        size = self.size
        limit = size if end is None else end
        # ``data`` holds the file from ``base`` to ``have``; only the top
        # level's Pixel Data moves ``base``.
        data, base = self.data, self.base
        have = base + len(data)
        last = -1
        while position < limit:
            if position + 12 > have:
                if position + 8 > size:
                    raise _Declined  # bytes pydicom would drop, or the file ends
                self.need(min(position + 12, size))
                data = self.data
                have = base + len(data)
            group, number, code, length = unpack(data, position - base)
            tag = group << 16 | number
            vr = short(code)
            if vr is not None:
                position += 8
            else:
                vr = _LONG.get(code)
                if vr is None:
                    if end is None and not top and tag == ITEM_DELIMITER and code == b"\0\0":
                        if length:
                            raise _Declined
                        return elements, position + 8
                    raise _Declined  # UN, an unknown VR, a delimiter out of place, implicit VR
                if position + 12 > have:
                    raise _Declined
                (length,) = _LENGTH.unpack_from(data, position - base + 8)
                position += 12
            if tag <= last or group == 0xFFFE:
                raise _Declined  # out of order, or an item out of place
            if tag == SPECIFIC_CHARACTER_SET and vr != "CS":
                raise _Declined  # pydicom's reader fails on its converted value
            last = tag
            if length == UNDEFINED_LENGTH:
                if vr != "SQ" or top and tag == PIXEL_DATA:
                    raise _Declined
                items, position = self.items(position, None)
                append(Element(tag, vr, SequenceValue(True, items)))
                data = self.data
                have = base + len(data)
                continue
            stop = position + length
            if top and tag == PIXEL_DATA:
                if vr == "SQ" or stop > size:
                    raise _Declined
                self.pixel_data = PixelDataPosition(vr, position, length)
                position = stop
                self.base, self.data = base, data = stop, b""  # its value stays in the file
                have = stop
                continue
            if stop > have:
                self.need(stop)
                data = self.data
                have = base + len(data)
            if vr == "SQ":
                if top and length > self.defer_size:
                    raise _Declined  # pydicom defers it, then reads it again
                items, position = self.items(position, stop)
                append(Element(tag, vr, SequenceValue(False, items)))
                data = self.data
                have = base + len(data)
                continue
            value = data[position - base : stop]
            if tag == SPECIFIC_CHARACTER_SET and b"\x00" in value:
                raise _Declined  # the same, looking such a name up
            append(_new_tuple(Element, (tag, vr, value)))
            position = stop
        if end is None and not top or position != limit:
            raise _Declined  # no item delimiter, or an element runs past its item
        return elements, position

    def items(self, position: int, end: int | None) -> tuple[list[Item], int]:
        """A sequence's items up to ``end``, or to its delimiter when ``end`` is None."""
        items: list[Item] = []
        while end is None or position < end:
            self.need(position + 8)
            tag, length = _ITEM_HEADER.unpack_from(self.data, position - self.base)
            tag = (tag & 0xFFFF) << 16 | tag >> 16  # (group, element) as read
            position += 8
            if tag == SEQUENCE_DELIMITER and end is None:
                return items, position
            if tag != ITEM:
                raise _Declined
            if length == UNDEFINED_LENGTH:
                elements, position = self.elements(position, None)
                items.append(Item(True, elements))
            else:
                elements, position = self.elements(position, position + length)
                items.append(Item(False, elements))
        if end is not None and position != end:
            raise _Declined  # an item runs past its sequence
        return items, position


def _instance_uids(elements: list[Element]) -> tuple[str, str, str]:
    """The Study, Series and SOP Instance UIDs, each checked as the reader does.

    Each found by bisection: the elements come in ascending order.
    """
    found: dict[int, str] = {}
    for tag, required in INSTANCE_UIDS:
        at = bisect.bisect_left(elements, tag, key=_TAG)
        text = ""
        if at < len(elements) and elements[at].tag == tag:
            _, vr, value = elements[at]
            if vr != "UI" or not isinstance(value, bytes):
                raise _Declined
            text = uid_text(value)
        if (required or text) and not uids.is_valid_uid(text):
            raise _Declined
        found[tag] = text
    return found[0x0020000D], found[0x0020000E], found[0x00080018]
