"""Rendered images of decoded frames: query parameters, VOI windows (PS3.3
C.11.2.1.2), colour, viewport scaling, JPEG and PNG."""

from __future__ import annotations

from typing import Any

import imagecodecs
import numpy as np
import pydicom
import pytest
from numpy.typing import NDArray
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels import apply_color_lut, convert_color_space

from dicomweb_archive import tags
from dicomweb_archive.codec.decode import Decoded, ImagePixel, decode_frame
from dicomweb_archive.codec.render import JPEG, PNG, RenderOptions, Window, render
from dicomweb_archive.errors import InvalidInputError, UnsupportedTransferSyntaxError
from dicomweb_archive.types import JSONDataset


def _no_palette() -> Dataset:
    raise AssertionError("the palette is read for PALETTE COLOR images only")


def _png(
    pixels: NDArray[Any],
    meta: JSONDataset | None = None,
    photometric: str = "MONOCHROME2",
    *,
    bits_stored: int = 16,
    **options: Any,
) -> NDArray[np.uint8]:
    """The rendered image, as PNG (lossless) decoded back."""
    body = render(
        Decoded(pixels, photometric),
        meta or {},
        RenderOptions(media_type=PNG, **options),
        bits_stored=bits_stored,
        palette=_no_palette,
    )
    assert body.startswith(b"\x89PNG")
    return np.asarray(imagecodecs.png_decode(body))


def _number(vr: str, *values: float | str) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)}


def _linear(values: NDArray[Any], center: float, width: float) -> NDArray[np.uint8]:
    """PS3.3 C.11.2.1.2.1, to 0..255."""
    out = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


RAMP = np.arange(-1000, 1048, 8, dtype=np.int16).reshape(16, 16)


# -- query parameters --------------------------------------------------------


def test_options_default() -> None:
    options = RenderOptions.from_query(JPEG, {})
    assert options == RenderOptions(JPEG, None, None, 90)


def test_options_from_the_query() -> None:
    options = RenderOptions.from_query(
        PNG, {"window": " 40 , 400 , sigmoid", "viewport": "128,64", "quality": "75"}
    )
    assert options == RenderOptions(PNG, Window(40.0, 400.0, "SIGMOID"), (128, 64), 75)
    assert RenderOptions.from_query(PNG, {"window": "1,2"}).window == Window(1, 2, "LINEAR")
    # Extra viewport values (the source rectangle) are not used.
    assert RenderOptions.from_query(PNG, {"viewport": "10,20,0,0,5,5"}).viewport == (10, 20)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window": "x"}, "window is center,width"),
        ({"window": "40"}, "window is center,width"),
        ({"window": "40,0"}, "is not valid"),
        ({"window": "40,-1"}, "is not valid"),
        ({"window": "40,400,GAMMA"}, "is not valid"),
        ({"viewport": "10"}, "viewport is width,height"),
        ({"viewport": "a,b"}, "viewport is width,height"),
        ({"viewport": "0,10"}, "1 to 8192"),
        ({"viewport": "10,8193"}, "1 to 8192"),
        ({"quality": "high"}, "quality is a number from 1 to 100"),
        ({"quality": "0"}, "quality is a number from 1 to 100"),
        ({"quality": "101"}, "quality is a number from 1 to 100"),
    ],
)
def test_bad_options_are_refused(params: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        RenderOptions.from_query(JPEG, params)


def test_the_cache_key_tells_renditions_apart() -> None:
    one = RenderOptions.from_query(JPEG, {"window": "40,400"})
    assert one.key() == RenderOptions.from_query(JPEG, {"window": "40.0,400"}).key()
    others = [
        RenderOptions.from_query(PNG, {"window": "40,400"}),
        RenderOptions.from_query(JPEG, {"window": "40,401"}),
        RenderOptions.from_query(JPEG, {"window": "40,400,SIGMOID"}),
        RenderOptions.from_query(JPEG, {"window": "40,400", "viewport": "8,8"}),
        RenderOptions.from_query(JPEG, {"window": "40,400", "quality": "50"}),
    ]
    assert len({one.key(), *(o.key() for o in others)}) == 6


# -- monochrome --------------------------------------------------------------


def test_without_a_window_the_frame_range_is_shown() -> None:
    got = _png(RAMP)
    assert got.shape == RAMP.shape and got.dtype == np.uint8
    # RAMP ascends from its minimum to its maximum.
    assert (got.flat[0], got.flat[-1]) == (0, 255)
    assert np.all(np.diff(got.ravel().astype(int)) >= 0)


def test_the_window_of_the_metadata_after_the_rescale() -> None:
    meta = {
        tags.RescaleSlope: _number("DS", 2),
        tags.RescaleIntercept: _number("DS", -100),
        tags.WindowCenter: _number("DS", 40, 300),  # the first pair is used
        tags.WindowWidth: _number("DS", 400, 1500),
    }
    values = RAMP.astype(float) * 2 - 100
    assert np.array_equal(_png(RAMP, meta), _linear(values, 40, 400))


def test_the_window_asked_for_wins() -> None:
    meta = {tags.WindowCenter: _number("DS", 40), tags.WindowWidth: _number("DS", 400)}
    got = _png(RAMP, meta, window=Window(0, 1000))
    assert np.array_equal(got, _linear(RAMP.astype(float), 0, 1000))


def test_window_functions() -> None:
    values = RAMP.astype(float)
    exact = _png(RAMP, window=Window(100, 800, "LINEAR_EXACT"))
    want = np.rint(np.clip((values - 100) / 800 + 0.5, 0, 1) * 255).astype(np.uint8)
    assert np.array_equal(exact, want)
    sigmoid = _png(RAMP, window=Window(100, 800, "SIGMOID"))
    want = np.rint(255 / (1 + np.exp(-4 * (values - 100) / 800))).astype(np.uint8)
    assert np.array_equal(sigmoid, want)
    # The VOI LUT Function of the metadata is the default.
    meta = {
        tags.WindowCenter: _number("DS", 100),
        tags.WindowWidth: _number("DS", 800),
        tags.VOILUTFunction: _number("CS", "SIGMOID"),
    }
    assert np.array_equal(_png(RAMP, meta), sigmoid)


def test_a_window_one_wide_is_a_threshold() -> None:
    got = _png(RAMP, window=Window(0, 1))
    assert np.array_equal(got, np.where(RAMP <= -0.5, 0, 255).astype(np.uint8))


def test_unusable_windows_of_the_metadata_are_ignored() -> None:
    plain = _png(RAMP)
    for center, width in ((40, 0), ("x", 400)):
        meta = {tags.WindowCenter: _number("DS", center), tags.WindowWidth: _number("DS", width)}
        assert np.array_equal(_png(RAMP, meta), plain)


def test_monochrome1_is_inverted() -> None:
    window = Window(0, 1000)
    assert np.array_equal(
        _png(RAMP, photometric="MONOCHROME1", window=window),
        255 - _png(RAMP, window=window),
    )


def test_only_the_bits_stored_count() -> None:
    # Signed 12-bit values whose bits above Bits Stored are not sign-extended.
    raw = (RAMP.astype(np.int32) & 0x0FFF).astype(np.int16)
    assert not np.array_equal(raw, RAMP)
    assert np.array_equal(_png(raw, bits_stored=12), _png(RAMP, bits_stored=12))
    # Unsigned 12-bit values with bits set above them (as old overlays did).
    values = np.arange(256, dtype=np.uint16).reshape(16, 16) * 16
    assert np.array_equal(_png(values | 0xF000, bits_stored=12), _png(values, bits_stored=12))


def test_a_codestream_unsigned_where_the_dataset_says_signed() -> None:
    ds = pydicom.dcmread(get_testdata_file("J2K_pixelrep_mismatch.dcm"))
    image = ImagePixel(ds.Rows, ds.Columns, 1, 16, ds.BitsStored, 1, "MONOCHROME2")
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    decoded = decode_frame(frame, str(ds.file_meta.TransferSyntaxUID), image)
    window = Window(40, 100)
    got = _png(decoded.pixels, bits_stored=ds.BitsStored, window=window)
    # As the values pydicom reads (sign-extended from Bits Stored) are shown.
    assert np.array_equal(got, _linear(ds.pixel_array.astype(float), 40, 100))


def test_a_flat_frame() -> None:
    got = _png(np.full((4, 4), 7, dtype=np.uint16))
    assert len(np.unique(got)) == 1


# -- colour ------------------------------------------------------------------


def test_rgb_is_shown_as_it_is() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    assert np.array_equal(_png(pixels, photometric="RGB", bits_stored=8), pixels)


def test_wide_rgb_keeps_its_top_eight_bits() -> None:
    pixels = np.random.default_rng(0).integers(0, 4096, (6, 5, 3), dtype=np.uint16)
    got = _png(pixels, photometric="RGB", bits_stored=12)
    assert np.array_equal(got, (pixels >> 4).astype(np.uint8))


def test_ybr_full_becomes_rgb() -> None:
    ds = pydicom.dcmread(get_testdata_file("SC_ybr_full_uncompressed.dcm"))
    ybr = ds.pixel_array  # pydicom keeps YBR_FULL as stored
    got = _png(ybr, photometric="YBR_FULL", bits_stored=8)
    assert np.array_equal(got, convert_color_space(ybr, "YBR_FULL", "RGB"))


def test_palette_colour() -> None:
    ds = pydicom.dcmread(get_testdata_file("OBXXXX1A.dcm"))
    body = render(
        Decoded(ds.pixel_array, "PALETTE COLOR"),
        {},
        RenderOptions(media_type=PNG),
        bits_stored=8,
        palette=lambda: ds,
    )
    expected = (apply_color_lut(ds.pixel_array, ds) >> 8).astype(np.uint8)
    assert np.array_equal(imagecodecs.png_decode(body), expected)


def test_photometric_interpretations_that_cannot_be_shown() -> None:
    pixels = np.zeros((2, 2, 4), dtype=np.uint8)
    with pytest.raises(UnsupportedTransferSyntaxError, match="CMYK images cannot be rendered"):
        _png(pixels, photometric="CMYK", bits_stored=8)


# -- viewport and encodings --------------------------------------------------


def test_a_viewport_keeps_the_aspect_ratio() -> None:
    pixels = np.zeros((40, 100), dtype=np.uint8)
    assert _png(pixels, viewport=(50, 50)).shape == (20, 50)
    assert _png(pixels, viewport=(1000, 20)).shape == (20, 50)
    assert _png(pixels, viewport=(100, 40)).shape == (40, 100)


def test_shrinking_averages_the_pixels_covered() -> None:
    base = np.array([[10, 200], [100, 50]], dtype=np.int16)
    checks = np.where(np.indices((8, 8)).sum(axis=0) % 2, 4, -4)  # averages to 0 per block
    pixels = (np.kron(base, np.ones((4, 4), np.int16)) + checks).astype(np.uint8)
    rgb = np.repeat(pixels[..., None], 3, axis=2)
    got = _png(rgb, photometric="RGB", bits_stored=8, viewport=(2, 2))
    assert np.array_equal(got[..., 0], base)


def test_enlarging_repeats_the_pixels() -> None:
    pixels = np.array([[[10, 20, 30], [40, 50, 60]]], dtype=np.uint8)  # 1 x 2 RGB
    got = _png(pixels, photometric="RGB", bits_stored=8, viewport=(4, 2))
    assert got.shape == (2, 4, 3)
    assert np.array_equal(got, np.repeat(np.repeat(pixels, 2, axis=0), 2, axis=1))


def test_jpeg_quality() -> None:
    pixels = np.random.default_rng(0).integers(0, 4000, (64, 64), dtype=np.uint16)

    def jpeg(quality: int) -> bytes:
        options = RenderOptions(media_type=JPEG, quality=quality)
        return render(
            Decoded(pixels, "MONOCHROME2"), {}, options, bits_stored=12, palette=_no_palette
        )

    low, high = jpeg(10), jpeg(100)
    assert low.startswith(b"\xff\xd8") and high.startswith(b"\xff\xd8")
    assert len(low) < len(high)
    decoded = np.asarray(imagecodecs.jpeg8_decode(high))
    assert decoded.shape == (64, 64)
    assert np.abs(decoded.astype(int) - _png(pixels).astype(int)).max() <= 3
