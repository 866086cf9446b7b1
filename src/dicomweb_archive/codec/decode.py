"""Decode one stored frame of any transfer syntax into native pixels.

A table maps each transfer syntax to a decoder, in the manner of pydicom's
pixel plugins: imagecodecs for the JPEG family, JPEG-LS, JPEG 2000 and HTJ2K
(OpenJPH), imagecodecs' DICOM RLE for RLE Lossless; native frames are only
reshaped.  Frames arrive as stored in the archive (one frame's codestream or
its native bytes in little-endian order), with the image pixel description
taken from the instance's metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import imagecodecs
import numpy as np
from numpy.typing import NDArray

from dicomweb_archive import tags, uids
from dicomweb_archive.codec import codestream
from dicomweb_archive.errors import MalformedDicomError, UnsupportedTransferSyntaxError
from dicomweb_archive.types import JSONDataset, first_value

Pixels = NDArray[np.generic]


@dataclass(frozen=True)
class ImagePixel:
    """The image pixel module attributes a decoder needs (PS3.3 C.7.6.3)."""

    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric_interpretation: str
    planar_configuration: int = 0
    number_of_frames: int = 1

    @classmethod
    def from_metadata(cls, meta: JSONDataset) -> ImagePixel:
        def number(key: str, default: int | None = None) -> int:
            value = first_value(meta, key, default)
            if not isinstance(value, int | float):
                raise MalformedDicomError(f"image pixel attribute ({key[:4]},{key[4:]}) missing")
            return int(value)

        bits_allocated = number(tags.BitsAllocated)
        return cls(
            rows=number(tags.Rows),
            columns=number(tags.Columns),
            samples_per_pixel=number(tags.SamplesPerPixel, 1),
            bits_allocated=bits_allocated,
            bits_stored=number(tags.BitsStored, bits_allocated),
            pixel_representation=number(tags.PixelRepresentation, 0),
            photometric_interpretation=str(
                first_value(meta, tags.PhotometricInterpretation, "")
            ).strip(),
            planar_configuration=number(tags.PlanarConfiguration, 0),
            number_of_frames=max(number(tags.NumberOfFrames, 1), 1),
        )

    @property
    def dtype(self) -> np.dtype[np.generic]:
        """The little-endian sample type of native pixel data."""
        if self.bits_allocated not in (8, 16, 32, 64):
            raise UnsupportedTransferSyntaxError(
                f"Bits Allocated {self.bits_allocated} cannot be decoded"
            )
        kind = "i" if self.pixel_representation else "u"
        return np.dtype(f"<{kind}{self.bits_allocated // 8}")

    @property
    def shape(self) -> tuple[int, ...]:
        if self.samples_per_pixel == 1:
            return (self.rows, self.columns)
        return (self.rows, self.columns, self.samples_per_pixel)


@dataclass(frozen=True)
class Decoded:
    """A decoded frame: samples interleaved (rows, columns[, samples])."""

    pixels: Pixels
    #: What the samples are after decoding (JPEG decoders turn YCbCr into RGB).
    photometric_interpretation: str


def _jpeg(data: bytes, image: ImagePixel) -> Pixels:
    # Samples labelled RGB are RGB whatever the JFIF/Adobe markers imply (PS3.5 8.2.1).
    space = "RGB" if image.photometric_interpretation == "RGB" else None
    try:
        return np.asarray(imagecodecs.jpeg8_decode(data, colorspace=space, outcolorspace=space))
    except imagecodecs.Jpeg8Error:
        # 12-bit and lossless processes the libjpeg build may refuse.
        return np.asarray(imagecodecs.ljpeg_decode(data))


def _jpeg_lossless(data: bytes, image: ImagePixel) -> Pixels:
    return np.asarray(imagecodecs.ljpeg_decode(data))


def _jpegls(data: bytes, image: ImagePixel) -> Pixels:
    return np.asarray(imagecodecs.jpegls_decode(data))


def _jpeg2k(data: bytes, image: ImagePixel) -> Pixels:
    return np.asarray(imagecodecs.jpeg2k_decode(data))


def _htj2k(data: bytes, image: ImagePixel) -> Pixels:
    if not codestream.parse(data).reversible:
        # imagecodecs' OpenJPH path wraps values that quantisation pushes past the
        # sample range (255 + 1 becomes 0); OpenJPEG clamps them.
        return np.asarray(imagecodecs.jpeg2k_decode(data))
    # Without a colour transform OpenJPH returns 3-sample images planar by default.
    return np.asarray(imagecodecs.htj2k_decode(data, planar=False))


def _rle(data: bytes, image: ImagePixel) -> Pixels:
    # Segments hold the most significant byte first, one sample plane after another.
    planar = imagecodecs.dicomrle_decode(data, f">u{image.bits_allocated // 8}")
    array = np.frombuffer(planar, dtype=f">u{image.bits_allocated // 8}")
    count = image.rows * image.columns
    if array.size < count * image.samples_per_pixel:
        raise MalformedDicomError("RLE frame decodes to fewer samples than the image holds")
    array = array[: count * image.samples_per_pixel].reshape(
        image.samples_per_pixel, image.rows, image.columns
    )
    return np.moveaxis(array, 0, -1) if image.samples_per_pixel > 1 else array[0]


def _native_422(data: bytes, image: ImagePixel) -> Pixels:
    # Each pair of pixels is Y1 Y2 Cb Cr (PS3.3 C.7.6.3.1.2); chrominance is repeated.
    if image.columns % 2:
        raise MalformedDicomError("YBR_FULL_422 Pixel Data needs an even number of columns")
    quads = np.frombuffer(data, dtype=image.dtype, count=image.rows * image.columns * 2)
    quads = quads.reshape(image.rows, image.columns // 2, 4)
    luminance = quads[..., :2].reshape(image.rows, image.columns)
    blue, red = (np.repeat(quads[..., k], 2, axis=1) for k in (2, 3))
    return np.stack([luminance, blue, red], axis=-1)


def _native(data: bytes, image: ImagePixel) -> Pixels:
    if image.photometric_interpretation == "YBR_FULL_422" and image.samples_per_pixel == 3:
        return _native_422(data, image)
    count = image.rows * image.columns * image.samples_per_pixel
    array = np.frombuffer(data, dtype=image.dtype, count=count)
    if image.samples_per_pixel > 1 and image.planar_configuration == 1:
        return np.moveaxis(array.reshape(image.samples_per_pixel, image.rows, image.columns), 0, -1)
    return array.reshape(image.shape)


_JPEG_FAMILY = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"}
_J2K_FAMILY = {
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.93",
}

DECODERS: dict[str, Callable[[bytes, ImagePixel], Pixels]] = {
    uids.ExplicitVRLittleEndian: _native,
    **dict.fromkeys(_JPEG_FAMILY, _jpeg),
    "1.2.840.10008.1.2.4.57": _jpeg_lossless,
    "1.2.840.10008.1.2.4.70": _jpeg_lossless,
    "1.2.840.10008.1.2.4.80": _jpegls,
    "1.2.840.10008.1.2.4.81": _jpegls,
    **dict.fromkeys(_J2K_FAMILY, _jpeg2k),
    uids.HTJ2KLossless: _htj2k,
    uids.HTJ2KLosslessRPCL: _htj2k,
    uids.HTJ2K: _htj2k,
    uids.RLELossless: _rle,
}


def can_decode(transfer_syntax: str, image: ImagePixel) -> bool:
    return transfer_syntax in DECODERS and image.bits_allocated in (8, 16, 32, 64)


def decoded_photometric(transfer_syntax: str, image: ImagePixel) -> str:
    """The Photometric Interpretation of frames of ``image`` once decoded."""
    photometric = image.photometric_interpretation
    if transfer_syntax in _JPEG_FAMILY and photometric.startswith("YBR"):
        return "RGB"  # libjpeg converts YCbCr to RGB
    if photometric in ("YBR_ICT", "YBR_RCT"):
        return "RGB"  # the JPEG 2000 decoder undoes the component transform
    if photometric == "YBR_FULL_422":
        return "YBR_FULL"  # decoded to one chrominance pair per pixel
    return photometric


def decode_frame(data: bytes, transfer_syntax: str, image: ImagePixel) -> Decoded:
    """Decode one stored frame into samples of the image's native type."""
    decoder = DECODERS.get(transfer_syntax)
    if decoder is None or not can_decode(transfer_syntax, image):
        raise UnsupportedTransferSyntaxError(
            f"frames in transfer syntax {transfer_syntax} cannot be decoded"
        )
    try:
        pixels = decoder(data, image)
    except (MalformedDicomError, UnsupportedTransferSyntaxError):
        raise
    except Exception as exc:  # the codecs raise their own error classes
        raise MalformedDicomError(f"frame cannot be decoded: {exc}") from exc
    if pixels.shape[:2] != (image.rows, image.columns):
        raise MalformedDicomError(
            f"frame decodes to {pixels.shape[1]}x{pixels.shape[0]} pixels, "
            f"the image is {image.columns}x{image.rows}"
        )
    samples = pixels.shape[2] if pixels.ndim == 3 else 1
    if samples != image.samples_per_pixel:
        raise MalformedDicomError(
            f"frame decodes to {samples} samples per pixel, the image has {image.samples_per_pixel}"
        )
    if pixels.dtype != image.dtype:
        # Same bit pattern in the native width: signed values wrap into two's complement.
        pixels = pixels.astype(image.dtype.newbyteorder("="), copy=False).astype(image.dtype)
    return Decoded(pixels, decoded_photometric(transfer_syntax, image))


def native_bytes(decoded: Decoded) -> bytes:
    """Explicit VR Little Endian Pixel Data bytes of one frame, colour by pixel."""
    return np.ascontiguousarray(decoded.pixels).tobytes()
