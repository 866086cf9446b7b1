"""The Pixel Data of a parsed instance: a reference to it, then its frames or video stream.

The encoder (:mod:`dicomweb_archive.p10.jsonmodel`) only notes where the element
is; its value stays in the file until the frames are read here, one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dicomweb_archive import tags
from dicomweb_archive.p10 import frames as framing
from dicomweb_archive.p10.reader import ParsedInstance, read_deferred
from dicomweb_archive.p10.values import swap_bytes
from dicomweb_archive.types import JSONDataset, first_value

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement, RawDataElement

EXTENDED_OFFSET_TABLE = 0x7FE00001
EXTENDED_OFFSET_TABLE_LENGTHS = 0x7FE00002


@dataclass(frozen=True)
class PixelDataElement:
    """The top-level Pixel Data element as parsed (its value possibly still on disk)."""

    element: RawDataElement | DataElement | framing.StoredValue
    vr: str


def _open(
    parsed: ParsedInstance, pixel: PixelDataElement
) -> tuple[framing.FrameInfo, framing.PixelDataReader]:
    reader = framing.PixelDataReader(
        parsed.fp, pixel.element, file_size=parsed.size, name=parsed.name
    )
    info = framing.FrameInfo(
        encapsulated=framing.is_encapsulated(parsed.transfer_syntax_uid),
        pixel_data_vr=pixel.vr,
        undefined_length=reader.undefined_length,
    )
    return info, reader


def read_frames(
    parsed: ParsedInstance, pixel: PixelDataElement, metadata: JSONDataset
) -> tuple[framing.FrameInfo, Iterator[bytes]]:
    """The frames, each as served; the info is complete once they are all read.

    Every call reads the file again, so the frames can be gone through twice.
    """
    info, reader = _open(parsed, pixel)
    if info.encapsulated:
        return info, framing.encapsulated_frames(
            reader,
            number_of_frames=_frames_hint(metadata),
            extended_offsets=_extended_offsets(parsed),
            info=info,
        )
    return info, framing.native_frames(
        reader,
        framing.PixelLayout.from_metadata(metadata, parsed.name),
        is_little_endian=parsed.is_little_endian,
        vr=info.pixel_data_vr,
        info=info,
    )


def read_video(parsed: ParsedInstance, pixel: PixelDataElement) -> tuple[framing.FrameInfo, bytes]:
    """All fragments of a video transfer syntax, joined into one stream."""
    info, reader = _open(parsed, pixel)
    return info, framing.video_stream(reader, info)


def _frames_hint(metadata: JSONDataset) -> int:
    value = first_value(metadata, tags.NumberOfFrames)
    return int(value) if isinstance(value, int | float) and value >= 1 else 1


def _extended_offsets(parsed: ParsedInstance) -> tuple[bytes, bytes] | None:
    from pydicom.dataelem import RawDataElement

    ds = parsed.dataset
    if EXTENDED_OFFSET_TABLE not in ds or EXTENDED_OFFSET_TABLE_LENGTHS not in ds:
        return None
    values = []
    for tag in (EXTENDED_OFFSET_TABLE, EXTENDED_OFFSET_TABLE_LENGTHS):
        item = ds.get_item(tag, keep_deferred=True)
        value = item.value
        if value is None and isinstance(item, RawDataElement):
            value = read_deferred(
                parsed.fp, item, is_little_endian=parsed.is_little_endian, file_size=parsed.size
            )
        values.append(bytes(value or b""))
    if not values[0] or not values[1]:
        return None
    if not parsed.is_little_endian:
        values = [swap_bytes(v, 8) for v in values]
    return values[0], values[1]
