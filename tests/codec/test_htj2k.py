"""HTJ2K encoding: the codestream is what PS3.5 asks for, and decodes back bit-exact."""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Iterator

import imagecodecs
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from dicomweb_archive import Converter, ConvertOptions, uids
from dicomweb_archive.codec import codestream
from dicomweb_archive.codec.decode import Decoded, ImagePixel, decode_frame
from dicomweb_archive.codec.htj2k import (
    HTJ2KSettings,
    decomposition_levels,
    encode_frame,
    refusal,
)
from dicomweb_archive.demo import samples
from dicomweb_archive.errors import UnsupportedImageError
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.base import folders

#: Reference file: (Photometric Interpretation of the HTJ2K samples, component
#: precision, signed).  Together: RGB and YBR colour, palette, signed and
#: unsigned, 8/12/16 bits, multi-frame, an odd size, lossy and lossless sources.
REFERENCE = {
    "CT_small.dcm": ("MONOCHROME2", 16, True),
    "MR_small.dcm": ("MONOCHROME2", 16, True),
    "emri_small.dcm": ("MONOCHROME2", 12, False),  # 10 frames
    "emri_small_big_endian.dcm": ("MONOCHROME2", 12, False),
    "MR2_J2KR.dcm": ("MONOCHROME2", 12, False),  # 1024 x 1024, from JPEG 2000
    "JPEG2000.dcm": ("MONOCHROME2", 16, True),  # lossy JPEG 2000 source
    "SC_rgb.dcm": ("YBR_RCT", 8, False),
    "SC_rgb_rle_2frame.dcm": ("YBR_RCT", 8, False),
    "SC_rgb_16bit.dcm": ("YBR_RCT", 16, False),
    "SC_rgb_small_odd.dcm": ("YBR_RCT", 8, False),  # 3 x 3
    "SC_rgb_jpeg_dcmtk.dcm": ("YBR_RCT", 8, False),  # JPEG YCbCr, decoded to RGB
    "SC_ybr_full_uncompressed.dcm": ("YBR_FULL", 8, False),
    "SC_ybr_full_422_uncompressed.dcm": ("YBR_FULL", 8, False),
    "OBXXXX1A.dcm": ("PALETTE COLOR", 8, False),  # 800 x 600 palette indices
}
REFUSED = {
    "rtdose.dcm": "Bits Allocated 32",
    "liver.dcm": "Bits Allocated 1",
}


def _stored_frames(archive: Archive) -> Iterator[tuple[ImagePixel, str, bytes]]:
    for study in folders(archive, "studies"):
        for series in folders(archive, f"studies/{study}/series"):
            for sop in folders(archive, f"{paths.series_dir(study, series)}/instances"):
                [meta] = archive.read_json_gz(paths.instance_metadata(study, series, sop))
                image = ImagePixel.from_metadata(meta)
                syntax = meta["00083002"]["Value"][0]
                for number in range(1, image.number_of_frames + 1):
                    body = archive.read(paths.frame_path(study, series, sop, number))
                    yield image, syntax, multipart.unwrap(body)[1]


@pytest.fixture(scope="module")
def reference_frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple]]:
    """Every frame of the reference files, as the archive stores them, by file."""
    root = tmp_path_factory.mktemp("htj2k")
    out: dict[str, list[tuple]] = {}
    for name in [*REFERENCE, *REFUSED]:
        archive = root / name
        Converter(archive, ConvertOptions(workers=1)).convert([get_testdata_file(name)])
        out[name] = list(_stored_frames(open_archive(archive)))
    return out


def _tlm_lengths(data: bytes) -> list[int]:
    """Tile-part lengths from the TLM segment, read without the module's parser."""
    at = data.index(b"\xff\x55")
    length, _, stlm = struct.unpack_from(">HBB", data, at + 2)
    size_t = (stlm >> 4) & 3
    size_p = 4 if stlm & 0x40 else 2
    entries = data[at + 6 : at + 2 + length]
    step = size_t + size_p
    fmt = ">" + {0: "", 1: "B", 2: "H"}[size_t] + ("I" if size_p == 4 else "H")
    return [struct.unpack_from(fmt, entries, k)[-1] for k in range(0, len(entries), step)]


def _assert_rpcl(data: bytes, image: ImagePixel) -> codestream.Codestream:
    header = codestream.parse(data)
    assert header.complete and header.has_cap, "a Part 15 codestream"
    assert header.progression == "RPCL"
    assert header.reversible
    assert header.levels == decomposition_levels(image.rows, image.columns)
    assert max(header.resolution_size(0)) <= 64
    assert header.resolution_size(header.levels) == (image.columns, image.rows)
    assert header.has_tlm
    assert [p.part for p in header.tile_parts] == list(range(header.levels + 1))
    assert [p.end - p.start for p in header.tile_parts] == _tlm_lengths(data)
    # The COD progression byte, read straight from the bytes (SGcod: 2 = RPCL).
    cod = data.index(b"\xff\x52")
    assert data[cod + 5] == 2
    return header


@pytest.mark.parametrize("name", list(REFERENCE))
def test_reference_frames_round_trip_bit_exact(name: str, reference_frames: dict) -> None:
    photometric, precision, signed = REFERENCE[name]
    frames = reference_frames[name]
    assert frames
    for image, syntax, payload in frames:
        original = decode_frame(payload, syntax, image)
        encoded = encode_frame(original, image, HTJ2KSettings())
        assert encoded.transfer_syntax_uid == uids.HTJ2KLosslessRPCL
        assert not encoded.lossy
        assert encoded.photometric_interpretation == photometric
        header = _assert_rpcl(encoded.codestream, image)
        assert header.multi_component_transform == (photometric == "YBR_RCT")
        assert {(c.precision, c.signed) for c in header.components} == {(precision, signed)}
        # Two decoders: OpenJPH (imagecodecs.htj2k_decode) and OpenJPEG.
        for decoded in (
            imagecodecs.htj2k_decode(encoded.codestream, planar=False),
            imagecodecs.jpeg2k_decode(encoded.codestream),
        ):
            assert decoded.dtype == original.pixels.dtype
            assert np.array_equal(decoded, original.pixels)
        labelled = dataclasses.replace(image, photometric_interpretation=photometric)
        again = decode_frame(encoded.codestream, encoded.transfer_syntax_uid, labelled)
        assert np.array_equal(again.pixels, original.pixels)


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_images(name: str, reference_frames: dict) -> None:
    image, _, _ = reference_frames[name][0]
    reason = refusal(image)
    assert reason and REFUSED[name] in reason
    pixels = np.zeros(image.shape, dtype=np.uint32 if image.bits_allocated == 32 else np.uint8)
    with pytest.raises(UnsupportedImageError, match=REFUSED[name]):
        encode_frame(Decoded(pixels, "MONOCHROME2"), image, HTJ2KSettings())


def test_unsupported_colour_is_refused() -> None:
    image = ImagePixel(4, 4, 3, 8, 8, 0, "HSV")
    with pytest.raises(UnsupportedImageError, match="HSV"):
        encode_frame(Decoded(np.zeros((4, 4, 3), np.uint8), "HSV"), image, HTJ2KSettings())


@pytest.mark.parametrize(
    ("size", "levels"),
    [
        ((512, 512), 5),
        ((1760, 1760), 5),
        ((4096, 3072), 6),
        ((64, 64), 5),
        ((3, 3), 1),
        ((2, 2), 1),
        ((1, 1000), 4),
        ((100, 3000), 6),
    ],
)
def test_decomposition_levels(size: tuple[int, int], levels: int) -> None:
    assert decomposition_levels(*size) == levels
    assert math.ceil(max(size) / 2**levels) <= 64


@pytest.mark.parametrize("signed", [False, True])
def test_precision_follows_bits_stored_only_when_the_samples_fit(signed: bool) -> None:
    image = ImagePixel(40, 30, 1, 16, 12, int(signed), "MONOCHROME2")
    rng = np.random.default_rng(3)
    low, high = (-2048, 2048) if signed else (0, 4096)
    pixels = rng.integers(low, high, size=(40, 30)).astype(image.dtype)
    for values, precision in ((pixels, 12), (pixels * 4, 16)):  # * 4: beyond 12 bits
        encoded = encode_frame(Decoded(values, "MONOCHROME2"), image, HTJ2KSettings())
        header = codestream.parse(encoded.codestream)
        assert [(c.precision, c.signed) for c in header.components] == [(precision, signed)]
        assert np.array_equal(imagecodecs.htj2k_decode(encoded.codestream), values)
        assert np.array_equal(imagecodecs.jpeg2k_decode(encoded.codestream), values)


def _psnr(decoded: np.ndarray, original: np.ndarray) -> float:
    peak = float(original.max()) - float(original.min())
    mse = float(((decoded.astype(float) - original.astype(float)) ** 2).mean())
    return 10 * math.log10(peak**2 / mse)


@pytest.mark.parametrize(
    ("name", "photometric"),
    [("SC_rgb_jpeg_dcmtk.dcm", "YBR_ICT"), ("MR2_J2KR.dcm", "MONOCHROME2")],
)
def test_lossy_is_labelled_lossy(name: str, photometric: str, reference_frames: dict) -> None:
    image, syntax, payload = reference_frames[name][0]
    original = decode_frame(payload, syntax, image)
    encoded = encode_frame(original, image, HTJ2KSettings(psnr=50))
    assert encoded.lossy and encoded.transfer_syntax_uid == uids.HTJ2K
    assert encoded.photometric_interpretation == photometric
    header = codestream.parse(encoded.codestream)
    assert not header.reversible and header.progression == "RPCL" and header.has_tlm
    # OpenJPEG clamps overshoots; imagecodecs' OpenJPH path wraps them.
    decoded = imagecodecs.jpeg2k_decode(encoded.codestream)
    assert 44 < _psnr(decoded, original.pixels) < 60
    again = decode_frame(encoded.codestream, uids.HTJ2K, image)
    assert np.array_equal(again.pixels, decoded)


def test_palette_is_never_lossy(reference_frames: dict) -> None:
    image, syntax, payload = reference_frames["OBXXXX1A.dcm"][0]
    original = decode_frame(payload, syntax, image)
    encoded = encode_frame(original, image, HTJ2KSettings(psnr=40))
    assert not encoded.lossy and encoded.transfer_syntax_uid == uids.HTJ2KLosslessRPCL
    assert codestream.parse(encoded.codestream).reversible


@pytest.fixture(scope="module")
def ct_slice(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    import pydicom

    [path] = samples.write_ct_series(tmp_path_factory.mktemp("ct"), slices=1)
    pixels: np.ndarray = pydicom.dcmread(path).pixel_array
    assert pixels.shape == (512, 512)
    return pixels


@pytest.mark.parametrize("fraction", [65536, 0.1])
def test_a_prefix_decodes_to_a_lower_resolution(ct_slice: np.ndarray, fraction: float) -> None:
    image = ImagePixel(512, 512, 1, 16, 16, 1, "MONOCHROME2")
    data = encode_frame(Decoded(ct_slice, "MONOCHROME2"), image, HTJ2KSettings()).codestream
    size = int(fraction if fraction > 1 else len(data) * fraction)
    prefix = data[:size]
    header = codestream.parse(prefix)
    assert not header.complete and header.tile_parts
    usable = header.tile_parts[-1]
    skipped = header.levels - usable.part
    assert skipped >= 1
    decoded = imagecodecs.htj2k_decode(prefix[: usable.end] + b"\xff\xd9", skipres=skipped)
    # The raw prefix decodes too, with the resilient decoder.
    resilient = imagecodecs.htj2k_decode(prefix, resilient=True, skipres=skipped)
    assert np.array_equal(resilient, decoded)
    factor = 2**skipped
    side = 512 // factor
    assert decoded.shape == (side, side)
    reduced = ct_slice.reshape(side, factor, side, factor).mean(axis=(1, 3))
    correlation = np.corrcoef(reduced.ravel(), decoded.astype(float).ravel())[0, 1]
    assert correlation > 0.9
    full = codestream.parse(data)
    first = full.resolution_prefix(full.smallest_resolution_within(64) or 0)
    assert first is not None and first <= len(data) / 10
