"""Split Pixel Data into frames without loading it whole.

Native data is sliced per frame (BitsAllocated 1 included, big endian turned
into little endian); encapsulated data is reassembled from its fragments with
the Extended Offset Table, the Basic Offset Table, or, without either, pydicom's
own fragment-to-frame rules.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, TypeGuard

from dicomweb_archive import tags, uids
from dicomweb_archive.errors import MalformedDicomError, TruncatedDicomError
from dicomweb_archive.p10.values import swap_bytes
from dicomweb_archive.types import JSONDataset, first_value

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement, RawDataElement

#: The ``info`` key of the bytes after the last native frame.
TRAILING_BYTES = "trailingBytes"
#: More than this after the last frame is refused rather than kept in ``info``.
MAX_TRAILING_BYTES = 1024 * 1024


def _int(meta: JSONDataset, key: str, default: int | None = None) -> int | None:
    value = first_value(meta, key)
    return int(value) if isinstance(value, int | float) else default


@dataclass
class PixelLayout:
    """Geometry of native pixel data, from the image pixel module."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    number_of_frames: int
    photometric_interpretation: str = ""
    #: Number of Frames is absent (one frame) or a number; not "1A" or 0.
    frames_given: bool = True

    @property
    def frame_bits(self) -> int:
        pixels = self.rows * self.columns
        if self.photometric_interpretation == "YBR_FULL_422":
            # Two luminance samples share one chrominance pair (PS3.3 C.7.6.3.1.2).
            return pixels * 2 * self.bits_allocated
        return pixels * self.samples_per_pixel * self.bits_allocated

    @property
    def frame_length(self) -> int:
        return (self.frame_bits + 7) // 8

    @classmethod
    def from_metadata(cls, meta: JSONDataset, name: str) -> PixelLayout:
        rows = _int(meta, tags.Rows)
        columns = _int(meta, tags.Columns)
        bits = _int(meta, tags.BitsAllocated)
        if not rows or not columns or not bits:
            raise MalformedDicomError(f"{name}: Pixel Data without Rows, Columns or Bits Allocated")
        frames = _int(meta, tags.NumberOfFrames)
        return cls(
            rows=rows,
            columns=columns,
            samples_per_pixel=_int(meta, tags.SamplesPerPixel, 1) or 1,
            bits_allocated=bits,
            number_of_frames=max(frames or 1, 1),
            photometric_interpretation=str(first_value(meta, tags.PhotometricInterpretation, "")),
            frames_given=tags.NumberOfFrames not in meta or (frames or 0) >= 1,
        )

    def describe(self) -> str:
        return (
            f"{self.number_of_frames} frame(s) of {self.rows}x{self.columns}x"
            f"{self.samples_per_pixel} at {self.bits_allocated} bits"
        )


@dataclass
class FrameInfo:
    """How the frames were stored in the source, for regenerating it."""

    encapsulated: bool
    number_of_frames: int = 0
    #: Fragment lengths of every frame (encapsulated only).
    fragments: list[list[int]] = field(default_factory=list)
    basic_offset_table: bool = False
    extended_offset_table: bool = False
    byte_swapped: bool = False
    pixel_data_vr: str = "OB"
    undefined_length: bool = False
    #: Native Pixel Data after the last frame, as in the file (restored on export).
    trailing_bytes: bytes = b""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "encapsulated": self.encapsulated,
            "numberOfFrames": self.number_of_frames,
            "vr": self.pixel_data_vr,
            "undefinedLength": self.undefined_length,
        }
        if self.encapsulated:
            out["basicOffsetTable"] = self.basic_offset_table
            out["extendedOffsetTable"] = self.extended_offset_table
            out["fragments"] = self.fragments
        if self.byte_swapped:
            out["byteSwapped"] = True
        if self.trailing_bytes:
            out[TRAILING_BYTES] = base64.b64encode(self.trailing_bytes).decode("ascii")
        return out


class StoredValue(NamedTuple):
    """A value left in the file, as pydicom's ``RawDataElement`` notes one (the
    fast path's, made without pydicom): where it starts and its length."""

    tag: int
    VR: str
    length: int
    value_tell: int
    value: None = None


def _in_file(
    item: RawDataElement | DataElement | StoredValue,
) -> TypeGuard[RawDataElement | StoredValue]:
    """Whether ``item`` notes where its value is in the file (not a converted element)."""
    if isinstance(item, StoredValue):
        return True
    from pydicom.dataelem import RawDataElement

    return isinstance(item, RawDataElement)


class PixelDataReader:
    """Reads Pixel Data that may sit in memory or on disk."""

    def __init__(
        self,
        fp: BinaryIO,
        item: RawDataElement | DataElement | StoredValue,
        *,
        file_size: int,
        name: str,
    ) -> None:
        self.name = name
        value = item.value
        self.undefined_length = getattr(item, "length", 0) == 0xFFFFFFFF or bool(
            getattr(item, "is_undefined_length", False)
        )
        if isinstance(value, bytes | bytearray):
            self._fp: BinaryIO = io.BytesIO(value)
            self._start = 0
            self.length = len(value)
        elif value is None and _in_file(item):
            self._fp = fp
            self._start = item.value_tell
            self.length = file_size - item.value_tell if self.undefined_length else item.length
            if item.value_tell + (0 if self.undefined_length else item.length) > (file_size):
                raise TruncatedDicomError(
                    f"{name}: Pixel Data announces {item.length} bytes but the file "
                    f"ends {file_size - item.value_tell} bytes after its start"
                )
        else:
            raise MalformedDicomError(f"{name}: Pixel Data has no readable value")

    def read(self, offset: int, length: int) -> bytes:
        self._fp.seek(self._start + offset)
        data = self._fp.read(length)
        if len(data) < length:
            raise TruncatedDicomError(f"{self.name}: Pixel Data is truncated")
        return data

    def stream(self) -> BinaryIO:
        self._fp.seek(self._start)
        return self._fp


def native_word_width(vr: str, bits_allocated: int) -> int:
    """The unit big-endian native Pixel Data is byte-swapped in."""
    return 2 if vr == "OW" and bits_allocated <= 8 else bits_allocated // 8


def native_frames(
    reader: PixelDataReader,
    layout: PixelLayout,
    *,
    is_little_endian: bool,
    vr: str,
    info: FrameInfo,
) -> Iterator[bytes]:
    """Yield each native frame as little-endian bytes."""
    needed_bits = layout.frame_bits * layout.number_of_frames
    if reader.length * 8 < needed_bits:
        raise TruncatedDicomError(
            f"{reader.name}: Pixel Data holds {reader.length} bytes but {layout.describe()} "
            f"need {(needed_bits + 7) // 8}"
        )
    swap = 1
    if not is_little_endian:
        swap = native_word_width(vr, layout.bits_allocated)
        info.byte_swapped = swap > 1
    layout = _account_for_every_byte(reader, layout, info, swap)
    info.number_of_frames = layout.number_of_frames
    if layout.bits_allocated == 1 and layout.frame_bits % 8:
        yield from _bit_frames(reader, layout)
        return
    length = layout.frame_length
    for index in range(layout.number_of_frames):
        if swap > 1:
            # Swap whole words of the stored value, then cut the frame out.
            start = index * length
            aligned = start - start % swap
            end = start + length
            end_aligned = min(end + (-end) % swap, reader.length)
            chunk = swap_bytes(reader.read(aligned, end_aligned - aligned), swap)
            yield chunk[start - aligned : start - aligned + length]
        else:
            yield reader.read(index * length, length)


def _account_for_every_byte(
    reader: PixelDataReader, layout: PixelLayout, info: FrameInfo, swap: int
) -> PixelLayout:
    """The layout that keeps every byte of the value: more frames, or trailing bytes.

    With an unreadable Number of Frames, a value holding whole frames is that
    many frames.  Otherwise what follows the last frame (besides the padding to an
    even length) is kept in ``info`` for export, or the file is refused.
    """
    needed = (layout.frame_bits * layout.number_of_frames + 7) // 8
    extra = reader.length - needed
    if extra <= needed % 2:  # nothing, or the padding to an even length
        return layout
    length = layout.frame_length
    if not layout.frames_given and layout.frame_bits % 8 == 0:
        count, rest = divmod(reader.length, length)
        if rest <= (count * length) % 2:
            return dataclasses.replace(layout, number_of_frames=count)
    if extra > MAX_TRAILING_BYTES or needed % swap:
        raise MalformedDicomError(
            f"{reader.name}: Pixel Data holds {reader.length} bytes, {extra} more than "
            f"the {needed} that {layout.describe()} need"
        )
    info.trailing_bytes = reader.read(needed, extra)
    return layout


def _bit_frames(reader: PixelDataReader, layout: PixelLayout) -> Iterator[bytes]:
    import numpy as np

    bits = layout.frame_bits
    for index in range(layout.number_of_frames):
        first_bit = index * bits
        first_byte = first_bit // 8
        last_byte = (first_bit + bits + 7) // 8
        chunk = np.frombuffer(reader.read(first_byte, last_byte - first_byte), np.uint8)
        unpacked = np.unpackbits(chunk, bitorder="little")
        offset = first_bit - first_byte * 8
        yield np.packbits(unpacked[offset : offset + bits], bitorder="little").tobytes()


def encapsulated_frames(
    reader: PixelDataReader,
    *,
    number_of_frames: int,
    extended_offsets: tuple[bytes, bytes] | None,
    info: FrameInfo,
) -> Iterator[bytes]:
    """Yield each encapsulated frame: its fragments joined, no item tags."""
    from pydicom.encaps import generate_fragmented_frames, parse_basic_offsets

    fp = reader.stream()
    try:
        basic = parse_basic_offsets(fp)
    except (EOFError, struct.error) as exc:
        raise TruncatedDicomError(
            f"{reader.name}: encapsulated Pixel Data ends inside its Basic Offset Table item"
        ) from exc
    except Exception as exc:
        raise MalformedDicomError(
            f"{reader.name}: encapsulated Pixel Data has no Basic Offset Table item: {exc}"
        ) from exc
    info.basic_offset_table = bool(basic)
    info.extended_offset_table = bool(extended_offsets)
    fp = reader.stream()
    count = 0
    try:
        for fragments in generate_fragmented_frames(
            fp,
            number_of_frames=number_of_frames,
            extended_offsets=extended_offsets,
        ):
            count += 1
            if count > number_of_frames:
                break
            info.fragments.append([len(f) for f in fragments])
            yield b"".join(fragments)
    except (TruncatedDicomError, MalformedDicomError):
        raise
    except EOFError as exc:
        raise TruncatedDicomError(f"{reader.name}: Pixel Data is truncated: {exc}") from exc
    except struct.error as exc:
        raise TruncatedDicomError(
            f"{reader.name}: encapsulated Pixel Data ends inside an item header"
        ) from exc
    except Exception as exc:
        raise MalformedDicomError(
            f"{reader.name}: cannot split encapsulated Pixel Data into frames: {exc}"
        ) from exc
    if count < number_of_frames:
        raise MalformedDicomError(
            f"{reader.name}: Number of Frames is {number_of_frames} but the "
            f"encapsulated Pixel Data holds {count}"
        )
    info.number_of_frames = count


def video_stream(reader: PixelDataReader, info: FrameInfo) -> bytes:
    """All fragments of a video transfer syntax, joined into one stream."""
    from pydicom.encaps import generate_fragmented_frames, parse_basic_offsets

    info.basic_offset_table = bool(parse_basic_offsets(reader.stream()))
    fp = reader.stream()  # read again from the Basic Offset Table item
    parts: list[bytes] = []
    for fragments in generate_fragmented_frames(fp, number_of_frames=1):
        parts.extend(fragments)
        info.fragments.append([len(f) for f in fragments])
    info.number_of_frames = 1
    return b"".join(parts)


def is_encapsulated(transfer_syntax_uid: str) -> bool:
    return transfer_syntax_uid not in uids.NATIVE_TRANSFER_SYNTAXES
