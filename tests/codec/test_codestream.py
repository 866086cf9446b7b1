"""JPEG 2000 codestream headers: SIZ, COD, CAP, TLM and the tile-part layout."""

from __future__ import annotations

import struct

import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames

from dicomweb_archive.codec import codestream
from dicomweb_archive.codec.codestream import Codestream, Component, TilePart
from dicomweb_archive.codec.decode import Decoded, ImagePixel
from dicomweb_archive.codec.htj2k import HTJ2KSettings, encode_frame
from dicomweb_archive.errors import MalformedDicomError


def _segment(marker: int, body: bytes) -> bytes:
    return struct.pack(">HH", marker, len(body) + 2) + body


def _siz(width: int, height: int, tile: tuple[int, int], offset: tuple[int, int]) -> bytes:
    body = struct.pack(">HIIIIIIIIH", 0, width, height, *offset, *tile, 0, 0, 1)
    return _segment(codestream.SIZ, body + bytes([0x8B, 1, 1]))  # signed, 12 bits


def _cod(order: int, levels: int, transform: int = 1) -> bytes:
    # Scod, progression, layers, MCT, levels, code-block 2^(4+2) x 2^(3+2), style, wavelet
    return _segment(
        codestream.COD, struct.pack(">BBHBBBBBB", 0, order, 1, 0, levels, 4, 3, 0, transform)
    )


def _tile_part(tile: int, part: int, parts: int, data: bytes, psot: int | None = None) -> bytes:
    length = 12 + 2 + len(data) if psot is None else psot
    sot = struct.pack(">HHHIBB", codestream.SOT, 10, tile, length, part, parts)
    return sot + struct.pack(">H", codestream.SOD) + data


def _made(
    *,
    size: tuple[int, int] = (100, 60),
    tile: tuple[int, int] = (100, 60),
    offset: tuple[int, int] = (0, 0),
    order: int = 2,
    levels: int = 2,
    extra: bytes = b"",
    parts: list[bytes] | None = None,
) -> bytes:
    """A codestream made by hand: main header, tile-parts of arbitrary bytes, EOC."""
    header = b"\xff\x4f" + _siz(*size, tile, offset) + extra + _cod(order, levels)
    body = b"".join(parts if parts is not None else [_tile_part(0, 0, 1, b"\x00" * 10)])
    return header + body + b"\xff\xd9"


def _first_frame(name: str) -> bytes:
    ds = pydicom.dcmread(get_testdata_file(name))
    return next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1))))


# -- main header -------------------------------------------------------------


def test_main_header_of_a_made_codestream() -> None:
    cap = _segment(codestream.CAP, b"\x00\x02\x00\x00\x00\x00")
    tlm = _segment(codestream.TLM, b"\x00\x00")
    parsed = codestream.parse(_made(size=(100, 60), order=4, levels=3, extra=cap + tlm))
    assert (parsed.width, parsed.height, parsed.x_offset, parsed.y_offset) == (100, 60, 0, 0)
    assert parsed.components == (Component(precision=12, signed=True),)
    assert parsed.progression == "CPRL"
    assert parsed.layers == 1 and not parsed.multi_component_transform
    assert parsed.levels == 3 and parsed.reversible
    assert parsed.code_block == (64, 32)
    assert parsed.markers == (codestream.SIZ, codestream.CAP, codestream.TLM, codestream.COD)
    assert parsed.has_cap and parsed.has_tlm
    assert parsed.complete and parsed.single_tile


@pytest.mark.parametrize(("order", "name"), enumerate(codestream.PROGRESSIONS))
def test_progression_orders(order: int, name: str) -> None:
    assert codestream.parse(_made(order=order)).progression == name


def test_an_unknown_progression_order_is_named() -> None:
    assert codestream.parse(_made(order=9)).progression == "unknown 9"


def test_the_irreversible_wavelet() -> None:
    data = _made().replace(_cod(2, 2), _cod(2, 2, transform=0))
    assert not codestream.parse(data).reversible


@pytest.mark.parametrize(
    ("options", "precision", "reversible", "levels"),
    [
        ({"reversible": True}, 16, True, 3),
        ({"reversible": True, "bitspersample": 12}, 12, True, 3),
        ({"reversible": True, "resolutions": 3}, 16, True, 2),
        ({"reversible": False, "level": 30}, 16, False, 3),
    ],
)
def test_what_openjpeg_writes(
    options: dict[str, object], precision: int, reversible: bool, levels: int
) -> None:
    pixels = np.random.default_rng(0).integers(0, 4000, (100, 130), dtype=np.uint16)
    parsed = codestream.parse(imagecodecs.jpeg2k_encode(pixels, codecformat="J2K", **options))
    assert (parsed.width, parsed.height) == (130, 100)
    assert parsed.components == (Component(precision, False),)
    assert (parsed.reversible, parsed.levels) == (reversible, levels)
    assert not parsed.has_cap and parsed.complete and parsed.single_tile
    assert len(parsed.tile_parts) == 1


def test_colour_with_the_component_transform() -> None:
    pixels = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    parsed = codestream.parse(imagecodecs.jpeg2k_encode(pixels, codecformat="J2K", reversible=True))
    assert parsed.components == (Component(8, False),) * 3
    assert parsed.multi_component_transform


@pytest.mark.parametrize(
    ("name", "precision", "signed"),
    [("MR_small_jp2klossless.dcm", 16, True), ("US1_J2KR.dcm", 8, False)],
)
def test_reference_files_agree_with_their_image_pixel_module(
    name: str, precision: int, signed: bool
) -> None:
    ds = pydicom.dcmread(get_testdata_file(name))
    parsed = codestream.parse(_first_frame(name))
    assert (parsed.width, parsed.height) == (ds.Columns, ds.Rows)
    assert len(parsed.components) == ds.SamplesPerPixel
    assert {c.precision for c in parsed.components} == {precision}
    assert {c.signed for c in parsed.components} == {signed}
    assert parsed.reversible  # .90 is lossless
    assert parsed.complete


def test_what_the_htj2k_encoder_writes() -> None:
    pixels = np.random.default_rng(0).integers(-1000, 1000, (64, 64), dtype=np.int16)
    image = ImagePixel(64, 64, 1, 16, 16, 1, "MONOCHROME2")
    data = encode_frame(Decoded(pixels, "MONOCHROME2"), image, HTJ2KSettings()).codestream
    parsed = codestream.parse(data)
    assert parsed.has_cap and parsed.has_tlm
    assert parsed.progression == "RPCL" and parsed.reversible
    assert parsed.components == (Component(16, True),)
    # One tile-part per resolution, back to back, up to the EOC marker.
    parts = parsed.tile_parts
    assert [p.part for p in parts] == list(range(parsed.levels + 1))
    assert {p.parts for p in parts} == {parsed.levels + 1}
    assert all(a.end == b.start for a, b in zip(parts, parts[1:], strict=False))
    assert parts[-1].end == len(data) - 2 and parsed.complete


# -- tile-parts and resolutions ----------------------------------------------


def test_tile_parts_are_located() -> None:
    parts = [
        _tile_part(0, 0, 3, b"a" * 10),
        _tile_part(0, 1, 3, b"b" * 20),
        _tile_part(0, 2, 3, b"c" * 30),
    ]
    data = _made(parts=parts)
    start = data.index(parts[0])
    parsed = codestream.parse(data)
    assert parsed.tile_parts == (
        TilePart(0, 0, 3, start, start + 24),
        TilePart(0, 1, 3, start + 24, start + 58),
        TilePart(0, 2, 3, start + 58, start + 102),
    )
    assert parsed.resolution_prefix(0) == start + 24
    assert parsed.resolution_prefix(2) == start + 102 == len(data) - 2
    assert parsed.resolution_prefix(3) is None


def test_a_last_tile_part_of_unknown_length_runs_to_eoc() -> None:
    parts = [_tile_part(0, 0, 2, b"a" * 10), _tile_part(0, 1, 0, b"b" * 20, psot=0)]
    data = _made(parts=parts, levels=1)
    parsed = codestream.parse(data)
    assert parsed.tile_parts[-1].end == len(data) - 2
    assert parsed.complete


def test_a_prefix_keeps_the_whole_tile_parts() -> None:
    parts = [_tile_part(0, r, 3, bytes([r]) * 40) for r in range(3)]
    data = _made(parts=parts)
    whole = codestream.parse(data)
    # From the first SOT marker on, short of the EOC marker.
    for cut in range(whole.tile_parts[0].start + 2, len(data) - 2):
        prefix = codestream.parse(data[:cut])
        assert not prefix.complete
        assert all(p.end <= cut for p in prefix.tile_parts)
        assert len(prefix.tile_parts) == sum(p.end <= cut for p in whole.tile_parts)


def test_several_tiles_have_no_resolution_prefix() -> None:
    parts = [_tile_part(t, 0, 1, b"x" * 8) for t in range(4)]
    parsed = codestream.parse(_made(size=(100, 60), tile=(50, 30), parts=parts, levels=0))
    assert not parsed.single_tile
    assert [p.tile for p in parsed.tile_parts] == [0, 1, 2, 3]
    assert parsed.resolution_prefix(0) is None


def test_one_tile_part_per_tile_has_no_resolution_prefix() -> None:
    parsed = codestream.parse(_made(levels=2))
    assert len(parsed.tile_parts) == 1
    assert parsed.resolution_prefix(0) is None


def _geometry(width: int, height: int, levels: int, offset: tuple[int, int] = (0, 0)) -> Codestream:
    return codestream.parse(
        _made(size=(width, height), tile=(width, height), offset=offset, levels=levels)
    )


def test_resolution_sizes() -> None:
    parsed = _geometry(512, 512, 5)
    assert [parsed.resolution_size(r) for r in range(6)] == [
        (16, 16),
        (32, 32),
        (64, 64),
        (128, 128),
        (256, 256),
        (512, 512),
    ]
    assert parsed.smallest_resolution_within(64) == 2
    assert parsed.smallest_resolution_within(100) == 2
    assert parsed.smallest_resolution_within(512) == 5
    assert parsed.smallest_resolution_within(15) is None


def test_resolution_sizes_round_up_from_the_image_offset() -> None:
    # ISO/IEC 15444-1 B.5: ceil(x1 / 2^k) - ceil(x0 / 2^k).
    parsed = _geometry(101, 7, 2, offset=(4, 2))
    assert parsed.resolution_size(2) == (97, 5)
    assert parsed.resolution_size(1) == (51 - 2, 4 - 1)
    assert parsed.resolution_size(0) == (26 - 1, 2 - 1)
    assert parsed.single_tile


# -- what is not a codestream ------------------------------------------------


def test_what_is_not_a_codestream() -> None:
    with pytest.raises(MalformedDicomError, match="not a JPEG 2000 codestream"):
        codestream.parse(b"\xff\xd8\xff\xe0 not j2k")
    with pytest.raises(MalformedDicomError, match="not a JPEG 2000 codestream"):
        codestream.parse(b"\xff\x4f")


def test_a_truncated_main_header() -> None:
    with pytest.raises(MalformedDicomError, match="header is truncated"):
        codestream.parse(b"\xff\x4f\xff\x51\x00")
    data = _made()
    for cut in (5, 20, data.index(b"\xff\x90") - 1):
        with pytest.raises(MalformedDicomError, match="header is truncated"):
            codestream.parse(data[:cut])


def test_a_main_header_without_cod() -> None:
    data = b"\xff\x4f" + _siz(10, 10, (10, 10), (0, 0)) + _tile_part(0, 0, 1, b"") + b"\xff\xd9"
    with pytest.raises(MalformedDicomError, match="lacks SIZ or COD"):
        codestream.parse(data)


def test_bytes_where_a_marker_should_be() -> None:
    data = _made()
    at = data.index(_cod(2, 2))
    with pytest.raises(MalformedDicomError, match=f"expected a marker at byte {at}"):
        codestream.parse(data[:at] + b"\x00\x00" + data[at + 2 :])
