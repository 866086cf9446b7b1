"""Regenerate an archived instance as P10 in another transfer syntax.

Explicit VR Little Endian is the one every archived image can be turned into
(PS3.18 8.7.3: the default for ``application/dicom``): the regenerated file is
re-encoded, its Pixel Data rebuilt from the archive's frames, decoded where
they are compressed, with the Photometric Interpretation the decoder produced.
"""

from __future__ import annotations

import io

import pydicom
from pydicom.dataset import Dataset

from dicomweb_archive import tags, uids
from dicomweb_archive.codec.decode import ImagePixel, can_decode, decode_frame, native_bytes
from dicomweb_archive.errors import UnsupportedTransferSyntaxError
from dicomweb_archive.export.p10 import export_instance
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.p10.values import WORD_WIDTH, swap_bytes
from dicomweb_archive.store.base import ReadableStore
from dicomweb_archive.types import JSONDataset, first_value

#: Transfer syntaxes whose files are re-encoded without touching the pixels' bytes.
_NATIVE = {
    uids.ImplicitVRLittleEndian,
    uids.ExplicitVRLittleEndian,
    uids.ExplicitVRBigEndian,
    uids.DeflatedExplicitVRLittleEndian,
}


def _frames_syntax(meta: JSONDataset) -> str | None:
    value = first_value(meta, tags.AvailableTransferSyntaxUID)
    return str(value) if value is not None else None


def can_transcode(meta: JSONDataset, source_syntax: str, target: str) -> bool:
    """Whether the instance described by ``meta`` can be answered in ``target``."""
    if target in ("*", source_syntax):
        return True
    if target != uids.ExplicitVRLittleEndian:
        return False
    if tags.PixelData not in meta or source_syntax in _NATIVE:
        return True
    frames = _frames_syntax(meta)
    try:
        image = ImagePixel.from_metadata(meta)
    except Exception:
        return False
    return frames is not None and can_decode(frames, image)


def _swap_words(ds: Dataset) -> None:
    """Turn the raw words of OW/OF/OL/OD/OV values from big into little endian."""
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                _swap_words(item)
        elif element.VR in WORD_WIDTH and isinstance(element.value, bytes):
            element.value = swap_bytes(element.value, WORD_WIDTH[element.VR])


def to_explicit_little_endian(
    archive: ReadableStore, study: str, series: str, sop: str, meta: JSONDataset
) -> bytes:
    """The instance as Explicit VR Little Endian P10, frames decoded."""
    ds = pydicom.dcmread(io.BytesIO(export_instance(archive, study, series, sop)))
    source = str(ds.file_meta.TransferSyntaxUID)
    if source == uids.ExplicitVRLittleEndian:
        return _save(ds)
    if source == uids.ExplicitVRBigEndian:
        has_pixels = "PixelData" in ds
        if has_pixels:
            del ds.PixelData
        _swap_words(ds)
        if has_pixels:
            # The archive's frames are little endian already.
            _set_native_pixels(archive, ds, (study, series, sop), meta)
    elif source not in _NATIVE and "PixelData" in ds:
        _set_native_pixels(archive, ds, (study, series, sop), meta)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(uids.ExplicitVRLittleEndian)
    return _save(ds)


def _set_native_pixels(
    archive: ReadableStore, ds: Dataset, instance: tuple[str, str, str], meta: JSONDataset
) -> None:
    frames_syntax = _frames_syntax(meta)
    image = ImagePixel.from_metadata(meta)
    if frames_syntax is None:
        raise UnsupportedTransferSyntaxError("the instance's frames have no transfer syntax")
    chunks = []
    photometric = image.photometric_interpretation
    for number in range(1, image.number_of_frames + 1):
        _, payload = multipart.unwrap(archive.read(paths.frame_path(*instance, number)))
        if frames_syntax == uids.ExplicitVRLittleEndian:
            chunks.append(payload)
            continue
        decoded = decode_frame(payload, frames_syntax, image)
        photometric = decoded.photometric_interpretation
        chunks.append(native_bytes(decoded))
    data = b"".join(chunks)
    data += b"\x00" * (len(data) % 2)
    ds.add_new(0x7FE00010, "OW" if image.bits_allocated > 8 else "OB", data)
    if frames_syntax != uids.ExplicitVRLittleEndian:
        ds.PhotometricInterpretation = photometric
        if image.samples_per_pixel > 1:
            ds.PlanarConfiguration = 0


def _save(ds: Dataset) -> bytes:
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, implicit_vr=False, little_endian=True, force_encoding=True)
    return out.getvalue()
