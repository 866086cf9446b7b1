"""Reduced JPEG-LS renditions: an integer step that fits, signed samples as their bits."""

from __future__ import annotations

import imagecodecs
import numpy as np

from dicomweb_archive.server.jpegls import encode, reduce


def test_reduce_fits_the_size_by_an_integer_step() -> None:
    pixels = np.arange(512 * 300, dtype=np.uint16).reshape(512, 300)
    assert reduce(pixels, 256).shape == (256, 150)
    assert reduce(pixels, 100).shape == (86, 50)  # step 6
    assert reduce(pixels, 1000).shape == (512, 300)
    rgb = np.zeros((64, 64, 3), dtype=np.uint8)
    assert reduce(rgb, 32).shape == (32, 32, 3)


def test_signed_samples_keep_their_bits() -> None:
    pixels = np.array([[-1000, 2000], [-1, 0]], dtype=np.int16)
    decoded = imagecodecs.jpegls_decode(encode(pixels, 2))
    assert np.array_equal(decoded.view(np.int16), pixels)
