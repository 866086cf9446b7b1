"""Reduced-resolution JPEG-LS renditions of frames (``jlsThumbnail``, ``resolution=``).

A viewer configured with ``framesPath: '/jlsThumbnail/'`` (or asking
``accept=image/jls`` with ``resolution=W,H``) gets each frame decoded, reduced
by an integer step until it fits, and encoded lossless in JPEG-LS by CharLS
(through imagecodecs): a few kilobytes for a quick first image.  Signed samples
are encoded as their two's complement bits, as DICOM's JPEG-LS frames hold
them.  Renditions are made once and cached (:mod:`.renditions`).
"""

from __future__ import annotations

import math

import imagecodecs
import numpy as np

from dicomweb_archive.server.renditions import Encoder

KIND = "jpegls"
MEDIA_TYPE = "image/jls"
#: JPEG-LS Lossless: the reduced image is encoded without further loss.
TRANSFER_SYNTAX = "1.2.840.10008.1.2.4.80"


def reduce(pixels: np.ndarray, size: int) -> np.ndarray:
    """Every n-th row and column, n the least step that fits ``size`` each way."""
    step = max(1, math.ceil(max(pixels.shape[0], pixels.shape[1]) / size))
    reduced = pixels[::step, ::step]
    if reduced.dtype.kind == "i":  # two's complement bits, as DICOM stores them
        reduced = reduced.view(reduced.dtype.str.replace("i", "u"))
    if reduced.dtype.itemsize > 2:
        reduced = reduced.astype(np.uint16)
    return np.ascontiguousarray(reduced)


def encode(pixels: np.ndarray, size: int) -> bytes:
    """The frame reduced to fit ``size`` and encoded in JPEG-LS Lossless."""
    return bytes(imagecodecs.jpegls_encode(reduce(pixels, size)))


def encoder(size: int) -> Encoder:
    """Encodes a decoded frame reduced to fit ``size``."""
    return lambda decoded, _image: encode(decoded.pixels, size)
