"""Pixel Data split into frames: native slicing, encapsulated fragments, video."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames
from pydicom.pixels.utils import pack_bits
from pydicom.uid import generate_uid

from dicomweb_archive import tags, uids
from dicomweb_archive.errors import MalformedDicomError, TruncatedDicomError
from dicomweb_archive.p10.frames import (
    MAX_TRAILING_BYTES,
    FrameInfo,
    PixelDataReader,
    PixelLayout,
    encapsulated_frames,
    is_encapsulated,
    native_frames,
    native_word_width,
    video_stream,
)
from dicomweb_archive.p10.reader import read_instance
from tests.conftest import write_instance


def _reader(value: bytes | None, name: str = "input.dcm", vr: str = "OB") -> PixelDataReader:
    """A reader of Pixel Data held in memory."""
    item = DataElement(0x7FE00010, vr, value)
    return PixelDataReader(io.BytesIO(), item, file_size=len(value or b""), name=name)


def _layout(ds: pydicom.Dataset) -> PixelLayout:
    return PixelLayout(
        rows=ds.Rows,
        columns=ds.Columns,
        samples_per_pixel=ds.SamplesPerPixel,
        bits_allocated=ds.BitsAllocated,
        number_of_frames=int(ds.get("NumberOfFrames", 1) or 1),
        photometric_interpretation=ds.PhotometricInterpretation,
    )


def _file_frames(path: str | Path) -> tuple[list[bytes], FrameInfo]:
    """The native frames of a P10 file as the converter reads them (large values on disk)."""
    with open(path, "rb") as fp:
        parsed = read_instance(fp, Path(path).name)
        item = parsed.dataset.get_item(0x7FE00010, keep_deferred=True)
        reader = PixelDataReader(parsed.fp, item, file_size=parsed.size, name=parsed.name)
        info = FrameInfo(encapsulated=False, pixel_data_vr=item.VR)
        frames = native_frames(
            reader,
            _layout(parsed.dataset),
            is_little_endian=parsed.is_little_endian,
            vr=item.VR,
            info=info,
        )
        return list(frames), info


def _element(vr: str, value: object) -> dict[str, object]:
    return {"vr": vr, "Value": [value]}


# -- layout ------------------------------------------------------------------


def test_layout_from_metadata() -> None:
    meta = {
        tags.Rows: _element("US", 3),
        tags.Columns: _element("US", 5),
        tags.BitsAllocated: _element("US", 16),
        tags.SamplesPerPixel: _element("US", 3),
        tags.NumberOfFrames: _element("IS", 4),
        tags.PhotometricInterpretation: _element("CS", "RGB"),
    }
    layout = PixelLayout.from_metadata(meta, "input.dcm")
    assert layout == PixelLayout(3, 5, 3, 16, 4, "RGB")
    assert layout.frame_bits == 3 * 5 * 3 * 16
    assert layout.frame_length == 90


def test_layout_defaults_and_odd_numbers_of_frames() -> None:
    meta = {
        tags.Rows: _element("US", 2),
        tags.Columns: _element("US", 2),
        tags.BitsAllocated: _element("US", 8),
    }
    assert PixelLayout.from_metadata(meta, "x") == PixelLayout(2, 2, 1, 8, 1, "")
    for frames in (0, "1A"):
        meta[tags.NumberOfFrames] = _element("IS", frames)
        assert PixelLayout.from_metadata(meta, "x").number_of_frames == 1


@pytest.mark.parametrize("missing", [tags.Rows, tags.Columns, tags.BitsAllocated])
def test_layout_needs_rows_columns_and_bits(missing: str) -> None:
    meta = {
        tags.Rows: _element("US", 2),
        tags.Columns: _element("US", 2),
        tags.BitsAllocated: _element("US", 8),
    }
    del meta[missing]
    with pytest.raises(MalformedDicomError, match=r"^scan\.dcm: Pixel Data without Rows"):
        PixelLayout.from_metadata(meta, "scan.dcm")


def test_frame_lengths_of_bits_and_422() -> None:
    # 1 bit: 3 x 5 pixels are 15 bits, two bytes; frames do not start on a byte.
    bits = PixelLayout(3, 5, 1, 1, 3)
    assert (bits.frame_bits, bits.frame_length) == (15, 2)
    # YBR_FULL_422: two luminance samples share one chrominance pair.
    ybr = PixelLayout(2, 4, 3, 8, 1, "YBR_FULL_422")
    assert (ybr.frame_bits, ybr.frame_length) == (2 * 4 * 2 * 8, 16)


def test_native_word_width() -> None:
    assert native_word_width("OW", 8) == 2  # 8-bit samples in 16-bit words
    assert native_word_width("OB", 8) == 1
    assert native_word_width("OW", 16) == 2
    assert native_word_width("OB", 16) == 2
    assert native_word_width("OW", 32) == 4
    assert native_word_width("OB", 1) == 0


def test_frame_info_json() -> None:
    native = FrameInfo(encapsulated=False, number_of_frames=2, pixel_data_vr="OW")
    assert native.to_json() == {
        "encapsulated": False,
        "numberOfFrames": 2,
        "vr": "OW",
        "undefinedLength": False,
    }
    native.byte_swapped = True
    assert native.to_json()["byteSwapped"] is True
    encapsulated = FrameInfo(
        encapsulated=True,
        number_of_frames=1,
        fragments=[[10, 4]],
        basic_offset_table=True,
        undefined_length=True,
    )
    assert encapsulated.to_json() == {
        "encapsulated": True,
        "numberOfFrames": 1,
        "vr": "OB",
        "undefinedLength": True,
        "basicOffsetTable": True,
        "extendedOffsetTable": False,
        "fragments": [[10, 4]],
    }


def test_is_encapsulated() -> None:
    for native in uids.NATIVE_TRANSFER_SYNTAXES:
        assert not is_encapsulated(native)
    assert is_encapsulated(uids.RLELossless)
    assert is_encapsulated(uids.HTJ2KLossless)
    assert is_encapsulated("1.2.840.10008.1.2.4.102")  # video


# -- the reader --------------------------------------------------------------


def test_reader_of_a_value_in_memory() -> None:
    reader = _reader(bytes(range(10)))
    assert reader.length == 10 and not reader.undefined_length
    assert reader.read(2, 3) == b"\x02\x03\x04"
    assert reader.stream().read() == bytes(range(10))
    with pytest.raises(TruncatedDicomError, match=r"^input\.dcm: Pixel Data is truncated"):
        reader.read(8, 3)


def test_reader_of_a_value_left_on_disk(tmp_path: Path) -> None:
    # 512 x 512 x 16 bits: over the size read values stay on disk.
    path = write_instance(
        tmp_path, study=generate_uid(), series=generate_uid(), rows=512, columns=512
    )
    pixels = pydicom.dcmread(path).PixelData
    with open(path, "rb") as fp:
        parsed = read_instance(fp, "big.dcm")
        item = parsed.dataset.get_item(0x7FE00010, keep_deferred=True)
        assert item.value is None
        reader = PixelDataReader(parsed.fp, item, file_size=parsed.size, name=parsed.name)
        assert reader.length == len(pixels) == 512 * 512 * 2
        assert reader.read(1000, 24) == pixels[1000:1024]


def test_reader_refuses_a_value_longer_than_the_file(tmp_path: Path) -> None:
    path = write_instance(
        tmp_path, study=generate_uid(), series=generate_uid(), rows=512, columns=512
    )
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(path.read_bytes()[:-1000])
    # read_instance finds it before any reader is made.
    with (
        open(cut, "rb") as fp,
        pytest.raises(
            TruncatedDicomError,
            match=r"^cut\.dcm: element \(7FE0,0010\) Pixel Data at offset \d+ announces "
            r"524288 bytes but the file ends 523288 bytes after it",
        ),
    ):
        read_instance(fp, "cut.dcm")


def test_reader_refuses_an_element_without_value() -> None:
    with pytest.raises(MalformedDicomError, match=r"^empty\.dcm: Pixel Data has no readable"):
        _reader(None, "empty.dcm")


# -- native frames -----------------------------------------------------------


def test_native_frames_are_slices_of_the_value() -> None:
    layout = PixelLayout(4, 3, 1, 16, 3)
    value = bytes(range(72))
    info = FrameInfo(encapsulated=False)
    frames = list(native_frames(_reader(value), layout, is_little_endian=True, vr="OW", info=info))
    assert frames == [value[0:24], value[24:48], value[48:72]]
    assert info.number_of_frames == 3 and not info.byte_swapped


def test_native_frames_keep_what_follows_the_last_frame() -> None:
    layout = PixelLayout(2, 2, 1, 8, 2)
    info = FrameInfo(encapsulated=False)
    value = b"abcdefgh" + b"\x00padding"
    frames = native_frames(_reader(value), layout, is_little_endian=True, vr="OB", info=info)
    assert list(frames) == [b"abcd", b"efgh"]
    assert info.trailing_bytes == b"\x00padding"
    assert info.to_json()["trailingBytes"] == "AHBhZGRpbmc="


def test_native_frames_pad_to_even_is_no_trailing_data() -> None:
    layout = PixelLayout(1, 3, 1, 8, 1)
    info = FrameInfo(encapsulated=False)
    frames = native_frames(_reader(b"abc\x00"), layout, is_little_endian=True, vr="OB", info=info)
    assert list(frames) == [b"abc"] and info.trailing_bytes == b""
    assert "trailingBytes" not in info.to_json()


def test_whole_frames_count_when_number_of_frames_is_unreadable() -> None:
    # pydicom's badVR.dcm: Number of Frames "1A", 6,000 bytes of 10x10 at 32 bits.
    layout = PixelLayout(10, 10, 1, 32, 1, frames_given=False)
    info = FrameInfo(encapsulated=False)
    value = bytes(range(256)) * 23 + bytes(112)
    frames = list(native_frames(_reader(value), layout, is_little_endian=True, vr="OB", info=info))
    assert len(frames) == 15 and b"".join(frames) == value
    assert info.number_of_frames == 15 and info.trailing_bytes == b""


def test_native_frames_refuse_far_too_much_data() -> None:
    layout = PixelLayout(4, 4, 1, 8, 1)
    info = FrameInfo(encapsulated=False)
    value = bytes(16 + MAX_TRAILING_BYTES + 2)
    with pytest.raises(
        MalformedDicomError,
        match=rf"^big\.dcm: Pixel Data holds {len(value)} bytes, {MAX_TRAILING_BYTES + 2} more "
        r"than the 16 that 1 frame\(s\) of 4x4x1 at 8 bits need$",
    ):
        next(
            native_frames(
                _reader(value, "big.dcm"), layout, is_little_endian=True, vr="OB", info=info
            )
        )


def test_native_frames_refuse_too_little_data() -> None:
    layout = PixelLayout(4, 4, 1, 16, 2)
    info = FrameInfo(encapsulated=False)
    with pytest.raises(
        TruncatedDicomError,
        match=r"^short\.dcm: Pixel Data holds 60 bytes but 2 frame\(s\) of 4x4x1 at 16 bits "
        r"need 64$",
    ):
        next(
            native_frames(
                _reader(bytes(60), "short.dcm"), layout, is_little_endian=True, vr="OW", info=info
            )
        )


def test_single_bit_frames_that_do_not_end_on_a_byte() -> None:
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, size=(3, 3, 5), dtype=np.uint8)
    # The frames' bits follow each other without padding (PS3.5 8.1.1).
    value = pack_bits(bits, pad=False)
    assert len(value) == 6  # 45 bits
    layout = PixelLayout(3, 5, 1, 1, 3)
    info = FrameInfo(encapsulated=False)
    frames = list(native_frames(_reader(value), layout, is_little_endian=True, vr="OB", info=info))
    # Each frame on its own starts on a byte, its last byte padded with zero bits.
    assert frames == [pack_bits(frame, pad=False) for frame in bits]
    assert all(len(frame) == 2 for frame in frames)
    assert info.number_of_frames == 3


def test_single_bit_frames_of_a_real_file() -> None:
    ds = pydicom.dcmread(get_testdata_file("liver.dcm"))
    frames, info = _file_frames(get_testdata_file("liver.dcm"))
    assert (info.number_of_frames, len(frames)) == (3, 3)
    for frame, pixels in zip(frames, ds.pixel_array, strict=True):
        assert frame == pack_bits(pixels, pad=False)


def test_big_endian_words_cut_inside_a_word() -> None:
    # 8-bit samples in OW, big endian: swapped in 16-bit words; frames of 9
    # bytes, so the second starts in the middle of a word.
    little = bytes(range(18))
    big = bytes(b for pair in zip(little[1::2], little[0::2], strict=True) for b in pair)
    layout = PixelLayout(3, 3, 1, 8, 2)
    info = FrameInfo(encapsulated=False, pixel_data_vr="OW")
    frames = list(native_frames(_reader(big), layout, is_little_endian=False, vr="OW", info=info))
    assert frames == [little[:9], little[9:]]
    assert info.byte_swapped


def test_big_endian_bytes_are_not_swapped() -> None:
    layout = PixelLayout(1, 3, 1, 8, 2)
    info = FrameInfo(encapsulated=False)
    frames = list(
        native_frames(_reader(b"abcdef"), layout, is_little_endian=False, vr="OB", info=info)
    )
    assert frames == [b"abc", b"def"]
    assert not info.byte_swapped


#: Big-endian reference files and their little-endian twins: OW and OB, 1, 8,
#: 16 and 32 bits, multi-frame, and an odd 3 x 3 RGB image in 16-bit words.
BIG_ENDIAN = {
    "MR_small_bigendian.dcm": "MR_small.dcm",
    "emri_small_big_endian.dcm": "emri_small.dcm",
    "SC_rgb_small_odd_big_endian.dcm": "SC_rgb_small_odd.dcm",
    "SC_rgb_expb_2frame.dcm": "SC_rgb_2frame.dcm",
    "SC_rgb_expb_16bit_2frame.dcm": "SC_rgb_16bit_2frame.dcm",
    "SC_rgb_expb_32bit_2frame.dcm": "SC_rgb_32bit_2frame.dcm",
    "OBXXXX1A_expb_2frame.dcm": "OBXXXX1A_2frame.dcm",
    "rtdose_expb.dcm": "rtdose.dcm",
    "liver_expb.dcm": "liver.dcm",
}


@pytest.mark.parametrize(("big", "little"), BIG_ENDIAN.items(), ids=list(BIG_ENDIAN))
def test_big_endian_files_give_the_little_endian_frames(big: str, little: str) -> None:
    got, info = _file_frames(get_testdata_file(big))
    want, _ = _file_frames(get_testdata_file(little))
    assert got == want and len(got) == info.number_of_frames
    ds = pydicom.dcmread(get_testdata_file(little))
    if ds.BitsAllocated > 1:
        assert b"".join(got) == ds.PixelData[: len(b"".join(got))]


def test_ybr_full_422_frames() -> None:
    ds = pydicom.dcmread(get_testdata_file("SC_ybr_full_422_uncompressed.dcm"))
    [frame], _ = _file_frames(get_testdata_file("SC_ybr_full_422_uncompressed.dcm"))
    assert len(frame) == 100 * 100 * 2 == len(ds.PixelData)
    assert frame == ds.PixelData


# -- encapsulated frames -----------------------------------------------------


def _split(value: bytes, frames: int, eot: tuple[bytes, bytes] | None = None) -> Iterator[bytes]:
    info = FrameInfo(encapsulated=True)
    yield from encapsulated_frames(
        _reader(value), number_of_frames=frames, extended_offsets=eot, info=info
    )


#: JPEG-like frames (end-of-image markers), of even lengths: no padding.
FRAMES = [b"\xff\xd8first!\xff\xd9", b"\xff\xd8second\xff\xd9", b"\xff\xd8the third!\xff\xd9"]


@pytest.mark.parametrize("fragments_per_frame", [1, 2, 3])
def test_frames_with_a_basic_offset_table(fragments_per_frame: int) -> None:
    value = encapsulate(FRAMES, fragments_per_frame=fragments_per_frame, has_bot=True)
    info = FrameInfo(encapsulated=True)
    frames = encapsulated_frames(
        _reader(value), number_of_frames=3, extended_offsets=None, info=info
    )
    assert list(frames) == FRAMES
    assert info.basic_offset_table and not info.extended_offset_table
    assert info.number_of_frames == 3
    assert [len(f) for f in info.fragments] == [fragments_per_frame] * 3
    assert [sum(f) for f in info.fragments] == [len(f) for f in FRAMES]


@pytest.mark.parametrize("fragments_per_frame", [1, 2])
def test_frames_without_an_offset_table(fragments_per_frame: int) -> None:
    # One fragment per frame, or frames found by their JPEG end-of-image markers.
    value = encapsulate(FRAMES, fragments_per_frame=fragments_per_frame, has_bot=False)
    info = FrameInfo(encapsulated=True)
    frames = encapsulated_frames(
        _reader(value), number_of_frames=3, extended_offsets=None, info=info
    )
    assert list(frames) == FRAMES
    assert not info.basic_offset_table and not info.extended_offset_table


def test_one_frame_in_several_fragments_without_a_table() -> None:
    value = encapsulate([b"0123456789" * 3], fragments_per_frame=4, has_bot=False)
    assert list(_split(value, 1)) == [b"0123456789" * 3]


def test_frames_with_an_extended_offset_table() -> None:
    value, offsets, lengths = encapsulate_extended(FRAMES)
    info = FrameInfo(encapsulated=True)
    frames = encapsulated_frames(
        _reader(value), number_of_frames=3, extended_offsets=(offsets, lengths), info=info
    )
    assert list(frames) == FRAMES
    assert info.extended_offset_table and not info.basic_offset_table


@pytest.mark.parametrize(
    "name", ["emri_small_RLE.dcm", "color3d_jpeg_baseline.dcm", "SC_rgb_rle_2frame.dcm"]
)
def test_frames_of_real_files_are_pydicoms(name: str) -> None:
    ds = pydicom.dcmread(get_testdata_file(name))
    frames = int(ds.NumberOfFrames)
    assert list(_split(ds.PixelData, frames)) == list(
        generate_frames(ds.PixelData, number_of_frames=frames)
    )


def test_fewer_frames_than_announced() -> None:
    value = encapsulate(FRAMES[:2], has_bot=True)
    with pytest.raises(
        MalformedDicomError,
        match=r"^input\.dcm: Number of Frames is 3 but the encapsulated Pixel Data holds 2",
    ):
        list(_split(value, 3))
    with pytest.raises(MalformedDicomError, match=r"^input\.dcm: cannot split"):
        list(_split(encapsulate(FRAMES[:2], has_bot=False), 3))


def test_more_frames_than_announced_keeps_the_announced() -> None:
    value = encapsulate(FRAMES, has_bot=True)
    assert list(_split(value, 2)) == FRAMES[:2]


def test_damaged_encapsulation_names_the_input() -> None:
    with pytest.raises(MalformedDicomError, match=r"^input\.dcm: .*Basic Offset Table item"):
        list(_split(b"\x00" * 16, 1))
    # Cut inside the second frame's item header: one frame is left.
    value = encapsulate(FRAMES, has_bot=True)
    with pytest.raises(MalformedDicomError, match=r"^input\.dcm: Number of Frames is 3 but"):
        list(_split(value[:40], 3))
    # Cut inside the first frame's item header.
    value = encapsulate(FRAMES, has_bot=False)
    with pytest.raises(MalformedDicomError, match=r"^input\.dcm: cannot split"):
        list(_split(value[:12], 3))


def test_undefined_length_is_noted() -> None:
    item = DataElement(0x7FE00010, "OB", encapsulate(FRAMES), is_undefined_length=True)
    reader = PixelDataReader(io.BytesIO(), item, file_size=0, name="x")
    assert reader.undefined_length


# -- video -------------------------------------------------------------------


@pytest.mark.parametrize("has_bot", [True, False])
def test_video_fragments_are_one_stream(has_bot: bool) -> None:
    stream = bytes(range(256)) * 40
    value = encapsulate([stream], fragments_per_frame=5, has_bot=has_bot)
    info = FrameInfo(encapsulated=True)
    assert video_stream(_reader(value), info) == stream
    assert info.number_of_frames == 1
    assert info.basic_offset_table is has_bot
    [fragments] = info.fragments
    assert len(fragments) == 5 and sum(fragments) == len(stream)
