"""Rendered images (PS3.18 8.3.5 / 9.5): a decoded frame as an 8-bit JPEG or PNG.

Monochrome frames go through the Modality LUT (rescale), then a window
(the request's ``window=center,width,function``, else the instance's first
Window Center/Width, else the frame's own range) per PS3.3 C.11.2.1.2, and are
inverted for MONOCHROME1; colour frames are turned into RGB (YBR conversion,
palette lookup).  ``viewport=width,height`` scales the image to fit, keeping its
aspect ratio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import imagecodecs
import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut, convert_color_space

from dicomweb_archive import tags
from dicomweb_archive.codec.decode import Decoded
from dicomweb_archive.errors import InvalidInputError, UnsupportedTransferSyntaxError
from dicomweb_archive.numerals import parse_decimal, parse_unsigned
from dicomweb_archive.types import JSONDataset, first_value

JPEG = "image/jpeg"
PNG = "image/png"
RENDERED_TYPES = (JPEG, PNG)


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str = "LINEAR"


@dataclass(frozen=True)
class RenderOptions:
    """The rendered-resource query parameters (PS3.18 8.3.5.1)."""

    media_type: str = JPEG
    window: Window | None = None
    viewport: tuple[int, int] | None = None
    quality: int = 90

    @classmethod
    def from_query(cls, media_type: str, params: dict[str, str]) -> RenderOptions:
        window = None
        if params.get("window"):
            parts = [p.strip() for p in params["window"].split(",")]
            try:
                center, width = parse_decimal(parts[0]), parse_decimal(parts[1])
            except (ValueError, IndexError):
                raise InvalidInputError("window is center,width[,function]") from None
            function = parts[2].upper() if len(parts) > 2 and parts[2] else "LINEAR"
            if function not in ("LINEAR", "LINEAR_EXACT", "SIGMOID") or width <= 0:
                raise InvalidInputError(f"window {params['window']!r} is not valid")
            window = Window(center, width, function)
        viewport = None
        if params.get("viewport"):
            try:
                sizes = [parse_unsigned(v) for v in params["viewport"].split(",")[:2]]
                viewport = (sizes[0], sizes[1])
            except (ValueError, IndexError):
                raise InvalidInputError("viewport is width,height") from None
            if min(viewport) < 1 or max(viewport) > 8192:
                raise InvalidInputError("viewport sizes must be 1 to 8192")
        quality = 90
        if params.get("quality"):
            try:
                quality = parse_unsigned(params["quality"])
            except ValueError:
                raise InvalidInputError("quality is a number from 1 to 100") from None
            if not 1 <= quality <= 100:
                raise InvalidInputError("quality is a number from 1 to 100")
        return cls(media_type, window, viewport, quality)

    def key(self) -> str:
        """What distinguishes one rendition from another, for caching."""
        return repr((self.media_type, self.window, self.viewport, self.quality))


def _first_number(meta: JSONDataset, key: str) -> float | None:
    value = first_value(meta, key)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _window_to_bytes(values: NDArray[np.float64], window: Window) -> NDArray[np.uint8]:
    c, w = window.center, window.width
    if window.function == "SIGMOID":
        out = 255.0 / (1.0 + np.exp(-4.0 * (values - c) / w))
    elif window.function == "LINEAR_EXACT":
        out = (values - c) / w + 0.5
        out = np.clip(out, 0.0, 1.0) * 255.0
    else:
        if w <= 1:
            out = np.where(values <= c - 0.5, 0.0, 255.0)
        else:
            out = ((values - (c - 0.5)) / (w - 1) + 0.5) * 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _stored_values(pixels: NDArray[np.generic], bits_stored: int) -> NDArray[np.generic]:
    """The sample values within Bits Stored (PS3.5 8.1.1): the bits above are no part
    of them, and a decoder may leave them as the codestream had them (a JPEG 2000
    codestream unsigned where Pixel Representation says signed)."""
    bits = pixels.dtype.itemsize * 8
    if pixels.dtype.kind not in "iu" or not 0 < bits_stored < bits:
        return pixels
    unused = bits - bits_stored
    if pixels.dtype.kind == "i":
        extended: NDArray[np.generic] = np.right_shift(np.left_shift(pixels, unused), unused)
        return extended
    masked: NDArray[np.generic] = np.bitwise_and(pixels, (1 << bits_stored) - 1)
    return masked


def _monochrome(
    pixels: NDArray[np.generic], meta: JSONDataset, options: RenderOptions, photometric: str
) -> NDArray[np.uint8]:
    slope = _first_number(meta, tags.RescaleSlope)
    intercept = _first_number(meta, tags.RescaleIntercept)
    values = pixels.astype(np.float64) * (slope if slope is not None else 1.0) + (intercept or 0.0)
    window = options.window
    if window is None:
        center = _first_number(meta, tags.WindowCenter)
        width = _first_number(meta, tags.WindowWidth)
        function = str(first_value(meta, tags.VOILUTFunction, "LINEAR")).upper()
        if center is not None and width is not None and width > 0:
            window = Window(
                center, width, function if function in ("SIGMOID", "LINEAR_EXACT") else "LINEAR"
            )
    if window is None:
        low, high = float(values.min()), float(values.max())
        window = Window((low + high) / 2 + 0.5, max(high - low + 1, 1.0))
    out = _window_to_bytes(values, window)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return out


def _colour(
    pixels: NDArray[np.generic],
    photometric: str,
    bits_stored: int,
    palette: Callable[[], Dataset],
) -> NDArray[np.uint8]:
    if photometric == "PALETTE COLOR":
        rgb: NDArray[np.generic] = apply_color_lut(pixels, palette())
        if rgb.dtype.itemsize > 1:
            return (rgb.astype(np.uint16) >> 8).astype(np.uint8)
        return rgb.astype(np.uint8)
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        converted: NDArray[np.generic] = convert_color_space(pixels, "YBR_FULL", "RGB")
        pixels = converted
    elif photometric not in ("RGB", "YBR_RCT", "YBR_ICT"):
        raise UnsupportedTransferSyntaxError(f"{photometric} images cannot be rendered")
    if pixels.dtype.itemsize > 1:
        shift = max(bits_stored - 8, 0)
        scaled: NDArray[np.uint8] = np.clip(pixels.astype(np.int64) >> shift, 0, 255).astype(
            np.uint8
        )
        return scaled
    return pixels.astype(np.uint8)


def _fit(image: NDArray[np.uint8], viewport: tuple[int, int] | None) -> NDArray[np.uint8]:
    if viewport is None:
        return image
    rows, columns = image.shape[:2]
    scale = min(viewport[0] / columns, viewport[1] / rows)
    height, width = max(round(rows * scale), 1), max(round(columns * scale), 1)
    if (height, width) == (rows, columns):
        return image
    # Area sampling: each output pixel averages the source pixels it covers.
    row_edges = np.linspace(0, rows, height + 1).astype(int)
    column_edges = np.linspace(0, columns, width + 1).astype(int)
    if scale < 1:
        summed = np.add.reduceat(image.astype(np.float64), row_edges[:-1], axis=0)
        summed = np.add.reduceat(summed, column_edges[:-1], axis=1)
        counts = np.outer(np.diff(row_edges), np.diff(column_edges))
        if image.ndim == 3:
            counts = counts[..., None]
        averaged: NDArray[np.uint8] = np.rint(summed / counts).astype(np.uint8)
        return averaged
    row_index = np.minimum((np.arange(height) / scale).astype(int), rows - 1)
    column_index = np.minimum((np.arange(width) / scale).astype(int), columns - 1)
    enlarged: NDArray[np.uint8] = image[row_index][:, column_index]
    return enlarged


def render(
    decoded: Decoded,
    meta: JSONDataset,
    options: RenderOptions,
    *,
    bits_stored: int,
    palette: Callable[[], Dataset],
) -> bytes:
    """The encoded rendered image of one decoded frame."""
    pixels = decoded.pixels
    photometric = decoded.photometric_interpretation
    if photometric.startswith("MONOCHROME"):
        image = _monochrome(_stored_values(pixels, bits_stored), meta, options, photometric)
    else:
        image = _colour(pixels, photometric, bits_stored, palette)
    image = np.ascontiguousarray(_fit(image, options.viewport))
    if options.media_type == PNG:
        return bytes(imagecodecs.png_encode(image))
    return bytes(imagecodecs.jpeg8_encode(image, level=options.quality))
