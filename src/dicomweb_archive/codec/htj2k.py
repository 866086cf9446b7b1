"""Encode decoded frames as HTJ2K (ISO/IEC 15444-15) with imagecodecs (OpenJPH).

Lossless output is labelled HTJ2K Lossless RPCL (1.2.840.10008.1.2.4.202) and is
written as PS3.5 10.18 asks: reversible 5/3 wavelet, RPCL progression, enough
decomposition levels that the lowest resolution is at most 64 pixels wide *and*
high (the stricter reading), TLM markers, and one tile-part per resolution, so a
prefix of the codestream that ends at a tile-part boundary decodes to a smaller
image.  Lossy output (irreversible 9/7, quantised) is labelled HTJ2K
(1.2.840.10008.1.2.4.203), never a lossless syntax.  Every codestream is checked
(CAP marker, COD, TLM, tile-parts) before it is labelled.

Colour (PS3.5 8.2.4, Table 8.2.4-1): RGB is encoded with the multi-component
transform, so it becomes YBR_RCT (reversible) or YBR_ICT (irreversible);
YBR_FULL is encoded as it is (no transform); PALETTE COLOR indices are encoded as
one component, losslessly only (the palette stays in the metadata); monochrome
as it is.

Precision: imagecodecs writes the sample type's width (8, 16) as the component
precision and has no setting for it.  For lossless output whose samples all fit
in Bits Stored, the SIZ precision is set to Bits Stored: signed samples are
encoded unchanged (no DC level shift applies to them), unsigned ones are first
shifted by ``2**(BitsStored-1)`` and encoded as signed, which is exactly the DC
level shift a decoder undoes for an unsigned component of that precision
(ISO/IEC 15444-1 G.1).  Lossy codestreams keep the container's precision: the
quantisation step sizes are relative to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import imagecodecs
import numpy as np

from dicomweb_archive import uids
from dicomweb_archive.codec import codestream
from dicomweb_archive.codec.decode import (
    Decoded,
    ImagePixel,
    Pixels,
    can_decode,
    decoded_photometric,
)
from dicomweb_archive.errors import DicomwebArchiveError, UnsupportedImageError

#: Lossy Image Compression Method (0028,2114) of HTJ2K (PS3.3 C.7.6.1.1.5.1).
LOSSY_METHOD: Final = "ISO_15444_15"
MEDIA_TYPE: Final = "image/jphc"
#: PS3.5 10.18: the lowest resolution of an RPCL codestream is at most this large.
BASE_RESOLUTION: Final = 64
#: Decomposition levels when the image needs fewer (OpenJPH's and Kakadu's default).
DEFAULT_LEVELS: Final = 5
#: OpenJPH treats smaller quantisation steps as "use the default".
_MIN_STEP: Final = 1e-5


@dataclass(frozen=True)
class HTJ2KSettings:
    """How frames are encoded."""

    #: ``None``: lossless (.202).  Otherwise lossy (.203), aiming at this peak
    #: signal-to-noise ratio in dB, the peak being each frame's value range
    #: (max - min).  Approximate: the quantisation step comes from the high-rate
    #: model PSNR = 10.8 - 20 log10(step / range); at low rates the result is
    #: usually better than asked.
    psnr: float | None = None

    @property
    def lossy(self) -> bool:
        return self.psnr is not None

    def to_json(self) -> dict[str, object]:
        return {"lossy": self.lossy, "psnr": self.psnr}


@dataclass(frozen=True)
class EncodedFrame:
    codestream: bytes
    transfer_syntax_uid: str
    #: Photometric Interpretation of the codestream's samples.
    photometric_interpretation: str
    lossy: bool


@dataclass(frozen=True)
class _Colour:
    #: Encode with the multi-component (colour) transform.
    transform: bool
    #: Photometric Interpretation of a reversible and of an irreversible codestream;
    #: ``None``: lossless only.
    lossless: str
    lossy: str | None


#: Keyed by the Photometric Interpretation of the decoded samples.
_COLOURS: Final = {
    "MONOCHROME1": _Colour(False, "MONOCHROME1", "MONOCHROME1"),
    "MONOCHROME2": _Colour(False, "MONOCHROME2", "MONOCHROME2"),
    "PALETTE COLOR": _Colour(False, "PALETTE COLOR", None),
    "RGB": _Colour(True, "YBR_RCT", "YBR_ICT"),
    "YBR_FULL": _Colour(False, "YBR_FULL", "YBR_FULL"),
}


def refusal(image: ImagePixel) -> str | None:
    """Why frames of ``image`` cannot be encoded as HTJ2K here, or ``None``."""
    if image.bits_allocated == 1:
        return "Bits Allocated 1 (bit-packed) images are not transcoded to HTJ2K"
    if image.bits_allocated not in (8, 16):
        return (
            f"Bits Allocated {image.bits_allocated}: only 8- and 16-bit samples are "
            "transcoded to HTJ2K (OpenJPEG, among other decoders, cannot read 32-bit codestreams)"
        )
    if image.samples_per_pixel not in (1, 3):
        return f"Samples per Pixel {image.samples_per_pixel} is not transcoded to HTJ2K"
    if not 1 <= image.bits_stored <= image.bits_allocated:
        return f"Bits Stored {image.bits_stored} does not fit Bits Allocated {image.bits_allocated}"
    return None


def frames_refusal(image: ImagePixel, transfer_syntax: str) -> str | None:
    """Why frames of ``image`` stored in ``transfer_syntax`` cannot be decoded and
    encoded as HTJ2K here, or ``None``."""
    if not can_decode(transfer_syntax, image):
        return f"frames in transfer syntax {transfer_syntax} cannot be decoded"
    photometric = decoded_photometric(transfer_syntax, image)
    if photometric not in _COLOURS:
        return f"Photometric Interpretation {photometric} is not transcoded to HTJ2K"
    return refusal(image)


def decomposition_levels(rows: int, columns: int) -> int:
    """Levels for an image: its lowest resolution at most 64 pixels each way.

    At least :data:`DEFAULT_LEVELS` when the smaller side allows them (no
    resolution narrower than one pixel), and never fewer than the limit needs.
    """
    needed = 0
    while -(-max(rows, columns) // (1 << needed)) > BASE_RESOLUTION:
        needed += 1
    allowed = max(min(rows, columns), 1).bit_length() - 1
    # imagecodecs reads 0 as "the default": one level is the least it writes.
    return max(1, needed, min(DEFAULT_LEVELS, allowed))


def _fit_precision(pixels: Pixels, bits: int) -> Pixels | None:
    """Samples to encode at precision ``bits``, or None when some do not fit."""
    if pixels.dtype.kind == "i":
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return pixels if pixels.min() >= low and pixels.max() <= high else None
    if pixels.max() >= 1 << bits:
        return None
    signed = np.dtype(f"i{pixels.dtype.itemsize}")
    shifted: Pixels = pixels.astype(signed) - signed.type(1 << (bits - 1))
    return shifted


def _set_precision(data: bytes, bits: int, signed: bool) -> bytes:
    """Rewrite every component's Ssiz in the SIZ marker segment (A.5.1)."""
    out = bytearray(data)
    count = int.from_bytes(out[40:42], "big")
    for component in range(count):
        out[42 + 3 * component] = (bits - 1) | (0x80 if signed else 0)
    return bytes(out)


def _quantisation_step(psnr: float, pixels: Pixels) -> float:
    # Uniform quantisation noise has MSE = step**2 / 12; the peak is the frame's
    # value range, and OpenJPH normalises samples to the container's range.
    peak = max(float(pixels.max()) - float(pixels.min()), 1.0)
    container = float(1 << (pixels.dtype.itemsize * 8))
    step: float = math.sqrt(12.0) * 10.0 ** (-psnr / 20.0) * peak / container
    return min(1.0, max(_MIN_STEP, step))


def _check(data: bytes, *, levels: int, lossy: bool, components: int) -> None:
    header = codestream.parse(data)
    problems = []
    if not header.has_cap:
        problems.append("no CAP marker (not a Part 15 codestream)")
    if header.progression != "RPCL":
        problems.append(f"progression {header.progression}")
    if header.levels != levels:
        problems.append(f"{header.levels} decomposition levels, not {levels}")
    if not header.has_tlm:
        problems.append("no TLM marker")
    if len(header.tile_parts) != levels + 1:
        problems.append(f"{len(header.tile_parts)} tile-parts for {levels + 1} resolutions")
    if header.reversible == lossy:
        problems.append("reversible wavelet" if lossy else "irreversible wavelet")
    if len(header.components) != components:
        problems.append(f"{len(header.components)} components")
    if problems:
        raise DicomwebArchiveError(
            "HTJ2K encoder output is not as PS3.5 requires: " + ", ".join(problems)
        )


def encode_frame(decoded: Decoded, image: ImagePixel, settings: HTJ2KSettings) -> EncodedFrame:
    """One decoded frame as an HTJ2K codestream, with its label."""
    reason = refusal(image)
    if reason:
        raise UnsupportedImageError(reason)
    photometric = decoded.photometric_interpretation
    colour = _COLOURS.get(photometric)
    if colour is None:
        raise UnsupportedImageError(
            f"Photometric Interpretation {photometric} is not transcoded to HTJ2K"
        )
    lossy = settings.lossy and colour.lossy is not None
    pixels = np.ascontiguousarray(decoded.pixels, dtype=decoded.pixels.dtype.newbyteorder("="))
    container = pixels.dtype.itemsize * 8
    precision, data = container, pixels
    if not lossy and image.bits_stored < container:
        fitted = _fit_precision(pixels, image.bits_stored)
        if fitted is not None:
            precision, data = image.bits_stored, fitted
    levels = decomposition_levels(image.rows, image.columns)
    step = _quantisation_step(settings.psnr, pixels) if settings.psnr and lossy else None
    encoded = bytes(
        imagecodecs.htj2k_encode(
            data,
            step,
            rgb=colour.transform,
            planar=False,
            resolutions=levels,
            reversible=not lossy,
            tlm=True,
            tilepart=imagecodecs.HTJ2K.TILEPART.RESOLUTIONS,
        )
    )
    if precision != container:
        encoded = _set_precision(encoded, precision, signed=pixels.dtype.kind == "i")
    _check(encoded, levels=levels, lossy=lossy, components=image.samples_per_pixel)
    return EncodedFrame(
        codestream=encoded,
        transfer_syntax_uid=uids.HTJ2K if lossy else uids.HTJ2KLosslessRPCL,
        photometric_interpretation=(colour.lossy or colour.lossless) if lossy else colour.lossless,
        lossy=lossy,
    )


def encoder_version() -> str:
    return str(imagecodecs.htj2k_version())
