"""Parse a P10 file: header dataset, file meta and encoding, large values left on disk.

pydicom is imported by the first file the fast path leaves to it (or the first
use of a fast-path file's pydicom dataset): a conversion of Explicit VR Little
Endian files starts without it.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from dicomweb_archive import uids
from dicomweb_archive.errors import (
    InvalidInputError,
    InvalidUIDError,
    MalformedDicomError,
    NotAnInstanceError,
    NotDicomError,
    TruncatedDicomError,
)
from dicomweb_archive.p10.explicit import (
    LONG_LENGTH_VRS,
    SHORT_LENGTH_VRS,
    SOP_CLASS_UID,
    ScannedFile,
    scan_file,
    uid_text,
)

if TYPE_CHECKING:
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset

#: Values larger than this stay on disk until they are copied out.
DEFER_SIZE = 256 * 1024
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
#: Every VR of PS3.5 (pydicom's ``STANDARD_VR``).
_STANDARD_VRS = SHORT_LENGTH_VRS | LONG_LENGTH_VRS


@dataclass
class ParsedInstance:
    """A parsed P10 file: what the converter needs, nothing written yet.

    Read by the fast path (:mod:`~dicomweb_archive.p10.explicit`), it has
    ``scanned``; its pydicom :attr:`dataset` is then read on first use only.
    """

    name: str
    fp: BinaryIO
    size: int
    #: The transfer syntax the dataset is encoded in.
    transfer_syntax_uid: str
    is_implicit_vr: bool
    is_little_endian: bool
    preamble: bytes | None
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    #: The fast path's reading of the file, when it took it.
    scanned: ScannedFile | None = None
    #: pydicom's reading: the dataset and its file meta (None when it has none).
    pydicom: tuple[Dataset, Dataset | None] | None = field(default=None, repr=False)

    @property
    def dataset(self) -> Dataset:
        return self._pydicom()[0]

    @property
    def file_meta(self) -> Dataset | None:
        return self._pydicom()[1]

    def _pydicom(self) -> tuple[Dataset, Dataset | None]:
        if self.pydicom is None:
            # The fast path read the file already: pydicom reads it as it would have.
            ds = _parse(self.fp, self.size, self.name)
            self.pydicom = (ds, _file_meta(ds))
        return self.pydicom

    @property
    def sop_class_uid(self) -> str:
        """The dataset's SOP Class UID ("" when none), not read by pydicom after the fast path."""
        if self.scanned is not None:
            found = (e.value for e in self.scanned.elements if e.tag == SOP_CLASS_UID)
            value = next(found, b"")
            return uid_text(value) if isinstance(value, bytes) else ""
        item = self.dataset.get("SOPClassUID")
        return str(item).strip("\x00 ") if item is not None else ""

    @property
    def is_deflated(self) -> bool:
        return self.transfer_syntax_uid == uids.DeflatedExplicitVRLittleEndian


def _uid(ds: Dataset, keyword: str, name: str, *, required: bool = True) -> str:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    item = ds.get_item(tag, keep_deferred=True) if tag is not None and tag in ds else None
    if item is not None and item.VR not in (None, "UI", "UN"):
        # Read as its VR, the value would be numbers or text, not the UID
        # that names the instance's folders.
        raise MalformedDicomError(f"{name}: {keyword} is encoded as {item.VR}, not UI")
    raw = getattr(item, "value", None)
    if isinstance(raw, bytes):
        value = raw.decode("ascii", "replace")
    elif raw is None:
        value = ""
    else:
        value = str(raw)
    value = value.strip("\x00 ")
    if not value and not required:
        return value
    if not value:
        last = max(ds.keys(), default=None)
        if tag is not None and item is None and last is not None and last < tag:
            # Elements come in ascending order: the data stops before the UID,
            # so the file may well have been cut there.
            raise InvalidUIDError(
                f"{name}: {keyword} is missing: the data set ends with element "
                f"{_tag_text(last)}, before {_tag_text(tag)} (truncated?)"
            )
        raise InvalidUIDError(f"{name}: {keyword} is missing")
    if not uids.is_valid_uid(value):
        raise InvalidUIDError(f"{name}: {keyword} {value!r} is not a valid UID")
    return value


def _meta_text(file_meta: Dataset, keyword: str, name: str) -> str:
    """A file meta value as text; pydicom converts it now, and may fail to."""
    try:
        return str(file_meta.get(keyword, ""))
    except Exception as exc:  # an unknown VR, a bad value
        raise MalformedDicomError(f"{name}: file meta {keyword} cannot be read: {exc}") from exc


def _tag_text(tag: int) -> str:
    """``(gggg,eeee) Name``: the tag, and its name when the dictionary has it."""
    from pydicom.datadict import dictionary_description

    text = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    try:
        return f"{text} {dictionary_description(tag)}"
    except KeyError:
        return text


def _sniff_not_dicom(fp: BinaryIO, size: int) -> bool:
    """True when the start of ``fp`` is neither P10 nor a plausible bare dataset.

    A damaged prefix (``DICN``, or ``DICM`` moved by bytes lost or added) next
    to the file meta is DICOM all the same: a damaged file, not a stranger.
    """
    fp.seek(0)
    head = fp.read(1024)
    fp.seek(0)
    if len(head) >= 132 and head[128:132] == b"DICM" or b"DICM\x02\x00" in head:
        return False
    if len(head) < 8:
        return True
    if len(head) >= 140 and _starts_dataset(head[132:140], size - 132, "<"):
        return False
    return not any(_starts_dataset(head, size, endian) for endian in "<>")


def _starts_dataset(head: bytes, size: int, endian: str) -> bool:
    # A bare dataset starts with an element of a low even group (0002, 0008,
    # 0010...), explicit (a known VR) or implicit (a length that fits the file).
    group: int = struct.unpack(endian + "H", head[:2])[0]
    if group % 2 or not 0x0002 <= group <= 0x0010:
        return False
    if head[4:6].decode("latin-1") in _STANDARD_VRS:
        return True
    length: int = struct.unpack(endian + "L", head[4:8])[0]
    return length == 0xFFFFFFFF or length <= size - 8


def read_instance(fp: BinaryIO, name: str, *, fast: bool = True) -> ParsedInstance:
    """Parse ``fp`` (seekable) into a :class:`ParsedInstance`.

    The fast path reads it when it can (unless not ``fast``), pydicom otherwise.
    Raises a :class:`~dicomweb_archive.errors.InvalidInputError` subclass whose
    message says what is wrong; ``name`` names the input in that message.
    """
    fp.seek(0, io.SEEK_END)
    size = fp.tell()
    fp.seek(0)
    if size == 0:
        raise TruncatedDicomError(f"{name}: empty file")
    scanned = scan_file(fp, size, defer_size=DEFER_SIZE) if fast else None
    if scanned is None:
        return _read_with_pydicom(fp, size, name)
    return ParsedInstance(
        name=name,
        fp=fp,
        size=size,
        transfer_syntax_uid=uids.ExplicitVRLittleEndian,
        is_implicit_vr=False,
        is_little_endian=True,
        preamble=scanned.preamble if any(scanned.preamble) else None,
        study_instance_uid=scanned.study_instance_uid,
        series_instance_uid=scanned.series_instance_uid,
        sop_instance_uid=scanned.sop_instance_uid,
        scanned=scanned,
    )


def _read_with_pydicom(fp: BinaryIO, size: int, name: str) -> ParsedInstance:
    import pydicom

    ds = _parse(fp, size, name)
    file_meta = _file_meta(ds)
    ts = _transfer_syntax(ds, file_meta, name)
    if len(ds) == 0:
        raise TruncatedDicomError(
            f"{name}: no data element could be read after the file meta (truncated or damaged)"
        )

    if ts == uids.DeflatedExplicitVRLittleEndian:
        # pydicom inflated the dataset into memory; value offsets refer to that
        # buffer, so read every value now (deflated files are small).
        fp.seek(0)
        try:
            ds = pydicom.dcmread(fp, force=True)
        except Exception as exc:
            raise MalformedDicomError(f"{name}: bad deflated data: {exc}") from exc
    if (
        file_meta is not None
        and _meta_text(file_meta, "MediaStorageSOPClassUID", name) == MEDIA_STORAGE_DIRECTORY
    ):
        raise NotAnInstanceError(f"{name}: a DICOMDIR (media directory), not an instance")
    _check_lengths(ds, size, name)
    _uid(ds, "SOPClassUID", name, required=False)
    preamble = getattr(ds, "preamble", None)
    study, series, sop = instance_uids(ds, name)
    return ParsedInstance(
        name=name,
        fp=fp,
        size=size,
        transfer_syntax_uid=ts,
        is_implicit_vr=bool(ds.original_encoding[0]),
        is_little_endian=bool(ds.original_encoding[1]),
        preamble=preamble if preamble and any(preamble) else None,
        study_instance_uid=study,
        series_instance_uid=series,
        sop_instance_uid=sop,
        pydicom=(ds, file_meta),
    )


def _file_meta(ds: Dataset) -> Dataset | None:
    file_meta = getattr(ds, "file_meta", None)
    return file_meta if file_meta is not None and len(file_meta) else None


def instance_uids(ds: Dataset, name: str) -> tuple[str, str, str]:
    """The Study, Series and SOP Instance UIDs that place ``ds``, checked."""
    return (
        _uid(ds, "StudyInstanceUID", name),
        _uid(ds, "SeriesInstanceUID", name),
        _uid(ds, "SOPInstanceUID", name),
    )


def _parse(fp: BinaryIO, size: int, name: str) -> Dataset:
    """pydicom's reading of ``fp`` (with a P10 prefix, else as a bare dataset)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    fp.seek(0)
    try:
        try:
            return pydicom.dcmread(fp, defer_size=DEFER_SIZE)
        except InvalidDicomError:
            if _sniff_not_dicom(fp, size):
                raise NotDicomError(
                    f"{name}: not a DICOM file (no 'DICM' prefix and no dataset)"
                ) from None
            fp.seek(0)
            ds = pydicom.dcmread(fp, defer_size=DEFER_SIZE, force=True)
            if "SOPInstanceUID" not in ds:
                raise InvalidUIDError(
                    f"{name}: no 'DICM' prefix, and read as a bare dataset it has "
                    "no SOP Instance UID"
                ) from None
            return ds
    except InvalidInputError:
        raise
    except EOFError as exc:
        raise TruncatedDicomError(f"{name}: truncated: {exc}") from exc
    except struct.error as exc:
        raise TruncatedDicomError(f"{name}: truncated: the file ends inside an element") from exc
    except zlib.error as exc:
        raise MalformedDicomError(f"{name}: bad deflated data: {exc}") from exc
    except Exception as exc:
        raise MalformedDicomError(f"{name}: cannot parse: {exc}") from exc


def _transfer_syntax(ds: Dataset, file_meta: Dataset | None, name: str) -> str:
    """The syntax the dataset is in: its file meta's, unless that names a native one."""
    ts = None
    if file_meta is not None and "TransferSyntaxUID" in file_meta:
        ts = _meta_text(file_meta, "TransferSyntaxUID", name).strip("\x00 ")
    is_implicit, is_little = ds.original_encoding[0], ds.original_encoding[1]
    if not ts or ts in uids.NATIVE_TRANSFER_SYNTAXES and ts != uids.DeflatedExplicitVRLittleEndian:
        # No meta, or meta naming a native syntax: the encoding read is the truth.
        ts = (
            uids.ImplicitVRLittleEndian
            if is_implicit
            else uids.ExplicitVRLittleEndian
            if is_little
            else uids.ExplicitVRBigEndian
        )
    if not uids.is_valid_uid(ts):
        raise MalformedDicomError(f"{name}: transfer syntax {ts!r} is not a UID")
    return ts


def _check_lengths(ds: Dataset, size: int, name: str) -> None:
    """Fail on the element that runs past the end of the file, not on its symptoms.

    pydicom stops reading at such an element; what would follow it (the UIDs,
    say) is then missing, which is not what is wrong with the file.
    """
    from pydicom.dataelem import RawDataElement

    for _tag, item in ds.items():  # as held: raw values stay raw
        if not isinstance(item, RawDataElement) or item.length == 0xFFFFFFFF:
            continue
        held = len(item.value) if item.value is not None else max(0, size - item.value_tell)
        if held < item.length:
            raise TruncatedDicomError(
                f"{name}: element {_tag_text(item.tag)} at offset "
                f"{item.value_tell} announces {item.length} bytes but the file ends "
                f"{held} bytes after it (truncated, or a damaged length)"
            )


def read_deferred(
    fp: BinaryIO, item: RawDataElement, *, is_little_endian: bool, file_size: int | None
) -> bytes:
    """Read a value pydicom left on disk (``item.value is None``)."""
    fp.seek(item.value_tell)
    if item.length == 0xFFFFFFFF:
        from pydicom.fileutil import read_undefined_length_value
        from pydicom.tag import SequenceDelimiterTag

        value = read_undefined_length_value(fp, is_little_endian, SequenceDelimiterTag, None)
        return value or b""
    if file_size is not None and item.value_tell + item.length > file_size:
        raise TruncatedDicomError(
            f"element ({item.tag >> 16:04X},{item.tag & 0xFFFF:04X}) announces "
            f"{item.length} bytes at offset {item.value_tell}, past the end of "
            f"the file ({file_size} bytes)"
        )
    data = fp.read(item.length)
    if len(data) < item.length:
        raise TruncatedDicomError(
            f"element ({item.tag >> 16:04X},{item.tag & 0xFFFF:04X}) announces "
            f"{item.length} bytes, file holds {len(data)}"
        )
    return data
