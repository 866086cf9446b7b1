"""Reduced-resolution JPEG-LS renditions of frames (``jlsThumbnail``, ``resolution=``).

A viewer configured with ``framesPath: '/jlsThumbnail/'`` (or asking
``accept=image/jls`` with ``resolution=W,H``) gets each frame decoded, reduced
by an integer step until it fits, and encoded lossless in JPEG-LS by CharLS
(through imagecodecs): a few kilobytes for a quick first image.  Signed samples
are encoded as their two's complement bits, as DICOM's JPEG-LS frames hold
them.  Renditions are cached in ``.dwa/cache/jpegls`` under a key of the
stored frame's version and the size, so each is made once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator

import imagecodecs
import numpy as np

from dicomweb_archive.codec.decode import ImagePixel, decode_frame
from dicomweb_archive.model import paths
from dicomweb_archive.model.paths import ResourcePath, ResourceType
from dicomweb_archive.store.archive import Archive

CACHE_DIR = f"{paths.WORK_DIR}/cache/jpegls"
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


def renditions(
    archive: Archive,
    resource: ResourcePath,
    frames: list[tuple[str, str]],
    payloads: Iterator[bytes],
    transfer_syntax: str,
    size: int,
) -> Iterator[bytes]:
    """The JPEG-LS rendition of each frame, from the cache or made and cached.

    ``frames`` names each frame's stored file and version, ``payloads`` gives
    their stored bytes, read only for renditions not cached yet.
    """
    image: ImagePixel | None = None
    for relative, version in frames:
        key = hashlib.blake2b(f"{relative}|{version}|{size}".encode(), digest_size=16).hexdigest()
        cached = f"{CACHE_DIR}/{key[:2]}/{key}"
        payload = next(payloads)
        if archive.exists(cached):
            yield archive.read(cached)
            continue
        if image is None:
            [meta] = archive.read_json_gz(resource.up(ResourceType.INSTANCE).metadata().file)
            image = ImagePixel.from_metadata(dict(meta))
        body = encode(decode_frame(payload, transfer_syntax, image).pixels, size)
        archive.store.write(cached, body)
        yield body
