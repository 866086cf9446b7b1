"""The marker segments of a JPEG 2000 / HTJ2K codestream (ISO/IEC 15444-1 Annex A).

Only what transcoding and progressive delivery need: the image and tile size
and component precisions (SIZ), the coding style (COD: progression order,
decomposition levels, wavelet, multi-component transform), whether the Part 15
capabilities (CAP) and tile-part lengths (TLM) are present, and where each
tile-part starts and ends (SOT), so that the prefix of a codestream holding its
lower resolutions can be found without decoding it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from dicomweb_archive.errors import MalformedDicomError

SOC: Final = 0xFF4F
CAP: Final = 0xFF50
SIZ: Final = 0xFF51
COD: Final = 0xFF52
TLM: Final = 0xFF55
SOT: Final = 0xFF90
SOD: Final = 0xFF93
EOC: Final = 0xFFD9

#: COD progression order values (Table A.16).
PROGRESSIONS: Final = ("LRCP", "RLCP", "RPCL", "PCRL", "CPRL")


@dataclass(frozen=True)
class Component:
    precision: int
    signed: bool


@dataclass(frozen=True)
class TilePart:
    tile: int
    #: Index of this tile-part within its tile (TPsot) and their count (TNsot, 0 if unknown).
    part: int
    parts: int
    #: Byte offset of the SOT marker, and of the first byte after the tile-part.
    start: int
    end: int


@dataclass(frozen=True)
class Codestream:
    width: int
    height: int
    x_offset: int
    y_offset: int
    tile_width: int
    tile_height: int
    components: tuple[Component, ...]
    progression: str
    layers: int
    multi_component_transform: bool
    levels: int
    #: True for the 5/3 reversible wavelet, False for the 9/7 irreversible one.
    reversible: bool
    code_block: tuple[int, int]
    #: Main header marker codes in order (SIZ first, up to the first SOT).
    markers: tuple[int, ...]
    tile_parts: tuple[TilePart, ...]
    #: False when the data ends inside a tile-part (a prefix of a codestream).
    complete: bool

    @property
    def has_cap(self) -> bool:
        """Part 15 (HTJ2K) capabilities are declared."""
        return CAP in self.markers

    @property
    def has_tlm(self) -> bool:
        return TLM in self.markers

    @property
    def single_tile(self) -> bool:
        return (
            self.tile_width >= self.width - self.x_offset
            and self.tile_height >= self.height - self.y_offset
        )

    def resolution_size(self, resolution: int) -> tuple[int, int]:
        """Width and height of resolution ``resolution`` (0 is the smallest)."""
        scale = 1 << (self.levels - resolution)
        return (
            -(-self.width // scale) - -(-self.x_offset // scale),
            -(-self.height // scale) - -(-self.y_offset // scale),
        )

    def smallest_resolution_within(self, size: int) -> int | None:
        """The largest resolution whose width and height are both at most ``size``."""
        fitting = [r for r in range(self.levels + 1) if max(self.resolution_size(r)) <= size]
        return fitting[-1] if fitting else None

    def resolution_prefix(self, resolution: int) -> int | None:
        """Bytes from the start up to the end of ``resolution``'s tile-part.

        Defined for one tile divided into one tile-part per resolution (as
        HTJ2K Lossless RPCL is written here); ``None`` otherwise.
        """
        parts = [p for p in self.tile_parts if p.tile == 0]
        if not self.single_tile or len(parts) != self.levels + 1 or resolution >= len(parts):
            return None
        return parts[resolution].end


def _u16(data: bytes, offset: int) -> int:
    value: int = struct.unpack_from(">H", data, offset)[0]
    return value


def parse(data: bytes) -> Codestream:
    """Parse the main header and the tile-part layout of ``data``.

    ``data`` may be a prefix of a codestream: tile-parts that do not fit are
    left out and ``complete`` is False.
    """
    try:
        return _parse(data)
    except (struct.error, IndexError) as exc:
        raise MalformedDicomError(f"JPEG 2000 codestream header is truncated: {exc}") from None


def _parse(data: bytes) -> Codestream:
    if len(data) < 4 or _u16(data, 0) != SOC or _u16(data, 2) != SIZ:
        raise MalformedDicomError("not a JPEG 2000 codestream (no SOC and SIZ markers)")
    markers: list[int] = []
    siz: bytes | None = None
    cod: bytes | None = None
    offset = 2
    while True:
        marker = _u16(data, offset)
        if marker == SOT:
            break
        if marker >> 8 != 0xFF:
            raise MalformedDicomError(f"expected a marker at byte {offset}")
        length = _u16(data, offset + 2)
        body = data[offset + 4 : offset + 2 + length]
        markers.append(marker)
        if marker == SIZ:
            siz = body
        elif marker == COD:
            cod = body
        offset += 2 + length
    if siz is None or cod is None:
        raise MalformedDicomError("JPEG 2000 main header lacks SIZ or COD")
    (_, width, height, x0, y0, tile_w, tile_h, _, _, count) = struct.unpack_from(">HIIIIIIIIH", siz)
    components = tuple(
        Component(precision=(siz[36 + 3 * c] & 0x7F) + 1, signed=bool(siz[36 + 3 * c] & 0x80))
        for c in range(count)
    )
    _, order, layers, mct, levels, xcb, ycb, _, transform = struct.unpack_from(">BBHBBBBBB", cod)
    parts, complete = _tile_parts(data, offset)
    return Codestream(
        width=width,
        height=height,
        x_offset=x0,
        y_offset=y0,
        tile_width=tile_w,
        tile_height=tile_h,
        components=components,
        progression=PROGRESSIONS[order] if order < len(PROGRESSIONS) else f"unknown {order}",
        layers=layers,
        multi_component_transform=bool(mct),
        levels=levels,
        reversible=transform == 1,
        code_block=(1 << (xcb + 2), 1 << (ycb + 2)),
        markers=tuple(markers),
        tile_parts=tuple(parts),
        complete=complete,
    )


def _tile_parts(data: bytes, offset: int) -> tuple[list[TilePart], bool]:
    parts: list[TilePart] = []
    size = len(data)
    while offset + 12 <= size and _u16(data, offset) == SOT:
        tile, length, part, count = struct.unpack_from(">HIBB", data, offset + 4)
        if length == 0:  # the last tile-part runs to the EOC marker
            length = size - offset - (2 if data.endswith(b"\xff\xd9") else 0)
        end = offset + length
        if end > size:
            return parts, False
        parts.append(TilePart(tile, part, count, offset, end))
        offset = end
    return parts, offset + 2 <= size and _u16(data, offset) == EOC
