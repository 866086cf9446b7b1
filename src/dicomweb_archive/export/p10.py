"""Regenerate a P10 file from an archived instance: metadata, frames, bulk data, info.

The result is semantically equivalent to the source (PS3.10; seed 004): every
element parses to the same value, with the original transfer syntax and file
meta.  Encapsulated Pixel Data is rebuilt with a Basic Offset Table, one
fragment per frame unless the source split frames into several fragments;
native Pixel Data is written in the original byte order.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID

from dicomweb_archive import tags
from dicomweb_archive.errors import FastPathUnsupportedError, ResourceNotFoundError
from dicomweb_archive.export.writer import encode_p10
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.p10.frames import TRAILING_BYTES, native_word_width
from dicomweb_archive.p10.values import WORD_WIDTH, swap_bytes
from dicomweb_archive.store.base import ReadableStore

_ITEM_LE = b"\xfe\xff\x00\xe0"
_PART_START = f"--{multipart.BOUNDARY}\r\n".encode("ascii")
_ITEM_BE = b"\xff\xfe\xe0\x00"


class _Bulk:
    """Reads BulkDataURIs of one study back into bytes in the target byte order."""

    def __init__(self, archive: ReadableStore, study: str, little_endian: bool) -> None:
        self.archive = archive
        self.study = study
        self.little_endian = little_endian

    def __call__(self, tag: str, vr: str, uri: str) -> bytes:
        relative = f"{paths.study_dir(self.study)}/{uri}"
        body = self.archive.read(relative)
        _, payload = multipart.unwrap(body)
        if not self.little_endian and vr in WORD_WIDTH:
            payload = swap_bytes(payload, WORD_WIDTH[vr])
        return payload


def _inline_to_target(document: Any, little_endian: bool) -> Any:
    """Swap InlineBinary words for a big-endian target, recursively."""
    if little_endian:
        return document
    if isinstance(document, list):
        return [_inline_to_target(d, little_endian) for d in document]
    if isinstance(document, dict):
        out = {}
        for key, element in document.items():
            if isinstance(element, dict) and "InlineBinary" in element:
                width = WORD_WIDTH.get(element.get("vr", ""), 1)
                raw = swap_bytes(base64.b64decode(element["InlineBinary"]), width)
                element = {**element, "InlineBinary": base64.b64encode(raw).decode()}
            elif isinstance(element, dict) and element.get("vr") == "SQ":
                element = {
                    **element,
                    "Value": [
                        _inline_to_target(item, little_endian) for item in element.get("Value", [])
                    ],
                }
            out[key] = element
        return out
    return document


def _has_bulk(document: Any) -> bool:
    """Whether a JSON dataset (or list of them) refers to any BulkDataURI."""
    if isinstance(document, list):
        return any(_has_bulk(item) for item in document)
    if isinstance(document, dict):
        return any(
            isinstance(element, dict)
            and (
                "BulkDataURI" in element
                or (element.get("vr") == "SQ" and _has_bulk(element.get("Value", [])))
            )
            for element in document.values()
        )
    return False


def _frames(archive: ReadableStore, study: str, series: str, sop: str, count: int) -> list[bytes]:
    out = []
    for number in range(1, count + 1):
        body = archive.read(paths.frame_path(study, series, sop, number))
        if body.startswith(b"--"):
            _, body = multipart.unwrap(body)
        out.append(body)
    return out


def _frame_payloads(
    archive: ReadableStore, study: str, series: str, sop: str, count: int
) -> list[bytes | memoryview]:
    """As :func:`_frames`, the payloads as views of the stored bodies (no copy)."""
    out: list[bytes | memoryview] = []
    for number in range(1, count + 1):
        body = archive.read(paths.frame_path(study, series, sop, number))
        if body.startswith(b"--"):
            head_end = body.find(b"\r\n\r\n")
            if (
                head_end < 0
                or not body.startswith(_PART_START)
                or not body.endswith(multipart.TRAILER)
            ):
                _, body = multipart.unwrap(body)  # raises as the stored body is wrong
            else:
                out.append(memoryview(body)[head_end + 4 : len(body) - len(multipart.TRAILER)])
                continue
        out.append(body)
    return out


def _restore_undefined_lengths(ds: Dataset, recorded: list[str]) -> None:
    """Mark the sequences, items and encapsulated values the source left open-ended.

    Paths are as the converter records them: ``tag(/index/tag)*`` for an
    element, ``…/index`` for an item.  A path that no longer leads anywhere is
    ignored.
    """
    for path in recorded:
        parts = path.split("/")
        node: Any = ds
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if depth % 2 == 0:
                tag = int(part, 16)
                if not isinstance(node, Dataset) or tag not in node:
                    break
                element = node[tag]
                if last:
                    # Open-ended values other than sequences are encapsulated
                    # data (nested icons); anything else keeps its length.
                    if element.VR == "SQ" or (
                        element.VR in ("OB", "OW", "UN")
                        and isinstance(element.value, bytes)
                        and element.value[:4] in (_ITEM_LE, _ITEM_BE)
                    ):
                        element.is_undefined_length = True
                else:
                    node = element.value
            else:
                index = int(part)
                if not isinstance(node, Sequence | list) or index >= len(node):
                    break
                if last:
                    node[index].is_undefined_length_sequence_item = True
                else:
                    node = node[index]


def _read(archive: ReadableStore, study: str, series: str, sop: str) -> tuple[Any, Any]:
    """The instance's DICOM JSON and ``info``."""
    meta_path = paths.instance_metadata(study, series, sop)
    if not archive.exists(meta_path):
        raise ResourceNotFoundError(f"instance {sop} is not in the archive")
    [meta] = archive.read_json_gz(meta_path)
    info = archive.read_json_gz(paths.instance_info(study, series, sop))
    return meta, info


def export_instance(archive: ReadableStore, study: str, series: str, sop: str) -> bytes:
    """The P10 bytes of one archived instance.

    ``archive`` is an :class:`~dicomweb_archive.store.archive.Archive` (every
    study, packed or not) or the files of one study.  The fast writer
    (:mod:`dicomweb_archive.export.writer`) makes the common case; whatever it
    leaves goes through pydicom.
    """
    meta, info = _read(archive, study, series, sop)
    try:
        return _export_fast(archive, study, series, sop, meta, info)
    except FastPathUnsupportedError:
        return _export_pydicom(archive, study, series, sop, meta, info)


def export_instance_fast(archive: ReadableStore, study: str, series: str, sop: str) -> bytes:
    """:func:`export_instance` by the fast writer only (raises FastPathUnsupportedError)."""
    meta, info = _read(archive, study, series, sop)
    return _export_fast(archive, study, series, sop, meta, info)


def export_instance_pydicom(archive: ReadableStore, study: str, series: str, sop: str) -> bytes:
    """:func:`export_instance` through pydicom only (the fallback)."""
    meta, info = _read(archive, study, series, sop)
    return _export_pydicom(archive, study, series, sop, meta, info)


def _export_fast(
    archive: ReadableStore, study: str, series: str, sop: str, meta: Any, info: Any
) -> bytes:
    document = {
        k: v for k, v in meta.items() if k not in (tags.AvailableTransferSyntaxUID, tags.PixelData)
    }
    little = bool((info.get("encoding") or {}).get("littleEndian"))
    return encode_p10(
        document,
        info,
        sop,
        pixel_element=meta.get(tags.PixelData),
        bulk=_Bulk(archive, study, little),
        frames=lambda count: _frame_payloads(archive, study, series, sop, count),
    )


def _export_pydicom(
    archive: ReadableStore, study: str, series: str, sop: str, meta: Any, info: Any
) -> bytes:
    encoding = info["encoding"]
    little = bool(encoding["littleEndian"])
    pixel = info.get("pixelData")
    meta = {k: v for k, v in meta.items() if k != tags.AvailableTransferSyntaxUID}
    pixel_element = meta.pop(tags.PixelData, None)

    # IS/DS values that are not numbers are kept as strings in the JSON;
    # pydicom's reader of JSON insists on numbers, so they are added afterwards.
    odd_numbers = {
        key: element
        for key, element in meta.items()
        if element.get("vr") in ("IS", "DS")
        and any(isinstance(v, str) for v in element.get("Value", []))
    }
    document = {k: v for k, v in meta.items() if k not in odd_numbers}
    ds = Dataset.from_json(
        _inline_to_target(document, little),
        # pydicom inspects the handler's signature for every element it reads;
        # most instances have no bulk data besides Pixel Data, so none is given.
        bulk_data_uri_handler=_Bulk(archive, study, little) if _has_bulk(document) else None,
    )
    _restore_undefined_lengths(ds, info.get("undefinedLength") or [])
    for key, element in odd_numbers.items():
        text = "\\".join("" if v is None else str(v) for v in element["Value"])
        raw = text.encode("ascii", "replace")
        raw += b" " * (len(raw) % 2)
        # Kept raw: pydicom refuses to build a number element from such text.
        ds[int(key, 16)] = RawDataElement(
            BaseTag(int(key, 16)), element["vr"], len(raw), raw, 0, False, True
        )
    if pixel_element is not None and pixel:
        vr = pixel["vr"]
        if pixel["encapsulated"] and pixel["numberOfFrames"]:
            frames = _frames(archive, study, series, sop, pixel["numberOfFrames"])
            fragments = pixel.get("fragments") or []
            per_frame = max((len(f) for f in fragments), default=1)
            ds.add_new(
                0x7FE00010,
                "OB",
                encapsulate(
                    frames,
                    fragments_per_frame=per_frame,
                    has_bot=bool(pixel.get("basicOffsetTable", True)),
                ),
            )
            ds["PixelData"].is_undefined_length = True
        elif pixel["numberOfFrames"]:
            data = b"".join(_frames(archive, study, series, sop, pixel["numberOfFrames"]))
            if pixel.get("byteSwapped"):
                width = native_word_width(vr, int(ds.get("BitsAllocated", 16)))
                # Pad first: the padding byte belongs to the last big-endian word.
                data = swap_bytes(data + b"\x00" * (-len(data) % width), width)
            data += base64.b64decode(pixel.get(TRAILING_BYTES, ""))
            ds.add_new(0x7FE00010, vr, data)
        else:  # a video stream kept as one bulk value
            uri = pixel_element["BulkDataURI"]
            ds.add_new(0x7FE00010, vr, _Bulk(archive, study, little)(tags.PixelData, vr, uri))
    file_meta = FileMetaDataset()
    stored_meta = info.get("fileMeta")
    if stored_meta:
        for element in Dataset.from_json(stored_meta):
            file_meta.add(element)
    file_meta.TransferSyntaxUID = info["transferSyntaxUID"]
    file_meta.MediaStorageSOPClassUID = ds.get(
        "SOPClassUID", file_meta.get("MediaStorageSOPClassUID")
    )
    file_meta.MediaStorageSOPInstanceUID = UID(sop)
    ds.file_meta = file_meta
    if info.get("preamble"):
        ds.preamble = base64.b64decode(info["preamble"])
    out = io.BytesIO()
    # The file meta's transfer syntax decides the encoding (it is the one read).
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
