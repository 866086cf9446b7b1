"""Every compressed frame of the reference files decodes like pydicom decodes it."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames

from dicomweb_archive.codec.decode import DECODERS, ImagePixel, decode_frame, native_bytes
from dicomweb_archive.errors import MalformedDicomError, UnsupportedTransferSyntaxError
from tests.reference import EXPECTED_FAILURES, reference_files

#: Images pydicom cannot decode here (no JPEG-LS or lossless JPEG plugin) and
#: the native file holding the same pixels.
LOSSLESS_TWINS = {
    "emri_small_jpeg_ls_lossless.dcm": "emri_small.dcm",
    "MR_small_jpeg_ls_lossless.dcm": "MR_small.dcm",
    "SC_rgb_jpeg_gdcm.dcm": "SC_rgb.dcm",
}
#: Lossy 12-bit JPEG pydicom cannot decode here, and the native file of the
#: image they were made from.
LOSSY_ORIGINALS = {"JPEG-lossy.dcm": "JPEG2000_UNC.dcm", "JPGExtended.dcm": "JPEG2000_UNC.dcm"}
#: Lossless JPEG processes: where pydicom cannot decode them, another decoder
#: (jpegsof3) gives the reference.
LOSSLESS_JPEG = ("1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70")
#: Codestreams that are damaged as shipped; pydicom cannot decode them either.
DAMAGED = {"JPEG2000-embedded-sequence-delimiter.dcm": "cannot be decoded"}
#: The codestream says unsigned, the dataset signed: pydicom sign-extends the
#: samples from Bits Stored, the decoder keeps the codestream's bits above it.
SIGN_MISMATCH = {"J2K_pixelrep_mismatch.dcm"}


def _compressed() -> list[pytest.ParameterSet]:
    params = []
    for path in reference_files():
        if path.name in EXPECTED_FAILURES or path.suffix not in (".dcm", ""):
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            syntax = str(ds.file_meta.TransferSyntaxUID)
        except Exception:
            continue
        if syntax in DECODERS and pydicom.uid.UID(syntax).is_compressed:
            params.append(pytest.param(path, id=path.name))
    return params


def _image(ds: pydicom.Dataset) -> ImagePixel:
    return ImagePixel(
        rows=ds.Rows,
        columns=ds.Columns,
        samples_per_pixel=ds.SamplesPerPixel,
        bits_allocated=ds.BitsAllocated,
        bits_stored=ds.BitsStored,
        pixel_representation=ds.PixelRepresentation,
        photometric_interpretation=ds.PhotometricInterpretation,
        planar_configuration=int(ds.get("PlanarConfiguration", 0)),
        number_of_frames=int(ds.get("NumberOfFrames", 1) or 1),
    )


@pytest.mark.parametrize("path", _compressed())
def test_reference_frame(path: object) -> None:
    ds = pydicom.dcmread(path)
    image = _image(ds)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    first = next(generate_frames(ds.PixelData, number_of_frames=image.number_of_frames))
    if ds.filename and str(ds.filename).endswith(tuple(DAMAGED)):
        with pytest.raises(MalformedDicomError, match="cannot be decoded"):
            decode_frame(first, syntax, image)
        return
    decoded = decode_frame(first, syntax, image)
    assert decoded.pixels.dtype == image.dtype
    assert len(native_bytes(decoded)) == image.rows * image.columns * image.samples_per_pixel * (
        image.bits_allocated // 8
    )
    name = str(path).rsplit("/", 1)[-1]
    if name in LOSSLESS_TWINS:
        twin = pydicom.dcmread(get_testdata_file(LOSSLESS_TWINS[name]))
        expected = twin.pixel_array
    else:
        try:
            expected = ds.pixel_array
        except Exception:
            _compare_without_pydicom(name, syntax, first, decoded.pixels)
            return
    if image.number_of_frames > 1:
        expected = expected[0]
    pixels = decoded.pixels
    if name in SIGN_MISMATCH:
        # The same stored values: compare them within Bits Stored, sign-extended.
        unused = image.bits_allocated - image.bits_stored
        assert unused > 0 and pixels.dtype == expected.dtype
        pixels = (pixels << unused) >> unused
    assert np.array_equal(pixels, expected)
    if ds.PhotometricInterpretation.startswith("YBR") and syntax.endswith((".50", ".51")):
        assert decoded.photometric_interpretation == "RGB"


def _compare_without_pydicom(name: str, syntax: str, frame: bytes, pixels: np.ndarray) -> None:
    """Check a frame pydicom has no decoder for here against another reference."""
    if name in LOSSY_ORIGINALS:
        original = pydicom.dcmread(get_testdata_file(LOSSY_ORIGINALS[name])).pixel_array
        error = np.abs(pixels.astype(float) - original).mean()
        # Far closer to the original than a flat image at its median is.
        assert error < 0.5 * np.abs(original - np.median(original)).mean()
    elif syntax in LOSSLESS_JPEG:
        expected = np.asarray(imagecodecs.jpegsof3_decode(frame))
        # The same bits: the reference gives unsigned samples.
        assert np.array_equal(pixels.astype(expected.dtype), expected)
    else:
        # GDCMJ2K_TextGBR.dcm: no other JPEG 2000 decoder here; ours must at
        # least give an image with structure.
        assert name == "GDCMJ2K_TextGBR.dcm", name
        assert pixels.std() > 0


def test_unknown_syntax_is_refused() -> None:
    image = ImagePixel(2, 2, 1, 8, 8, 0, "MONOCHROME2")
    with pytest.raises(UnsupportedTransferSyntaxError):
        decode_frame(b"\x00" * 4, "1.2.840.10008.1.2.4.100", image)
    with pytest.raises(MalformedDicomError):
        decode_frame(b"not a codestream", "1.2.840.10008.1.2.4.90", image)
