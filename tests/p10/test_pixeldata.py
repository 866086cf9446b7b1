"""The Pixel Data reference of an encoded instance, read as frames or as a video stream."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames
from pydicom.uid import generate_uid

from dicomweb_archive import uids
from dicomweb_archive.p10.bulkdata import BulkPolicy
from dicomweb_archive.p10.encoded import EncodedDataset
from dicomweb_archive.p10.jsonmodel import encode_instance
from dicomweb_archive.p10.pixeldata import PixelDataElement, read_frames, read_video
from dicomweb_archive.p10.reader import ParsedInstance, read_instance


def _encoded(data: bytes) -> tuple[ParsedInstance, EncodedDataset, PixelDataElement]:
    parsed = read_instance(io.BytesIO(data), "input.dcm")
    encoded = encode_instance(parsed, BulkPolicy())
    assert encoded.pixel_data is not None
    return parsed, encoded, encoded.pixel_data


def _encapsulated(syntax: str, pixel_data: bytes, frames: int, **extra: bytes) -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Rows = ds.Columns = 2
    ds.BitsAllocated = 8
    ds.SamplesPerPixel = 1
    ds.NumberOfFrames = frames
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixel_data
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["CT_small.dcm", "SC_rgb_rle_2frame.dcm", "emri_small.dcm"])
def test_frames_of_real_files(name: str) -> None:
    path = Path(get_testdata_file(name))
    parsed, encoded, pixel = _encoded(path.read_bytes())
    info, frames = read_frames(parsed, pixel, encoded.metadata)
    got = list(frames)
    ds = pydicom.dcmread(path)
    count = int(ds.get("NumberOfFrames", 1))
    assert len(got) == count == info.number_of_frames
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        assert got == list(generate_frames(ds.PixelData, number_of_frames=count))
    else:
        assert b"".join(got) == ds.PixelData
    # Every call reads the file again: the frames can be gone through twice.
    assert list(read_frames(parsed, pixel, encoded.metadata)[1]) == got


def test_frames_follow_the_extended_offset_table() -> None:
    frames = [b"\x01\x02", b"\x03\x04\x05\x06"]
    data, offsets, lengths = encapsulate_extended(frames)
    source = _encapsulated(
        uids.RLELossless,
        data,
        2,
        ExtendedOffsetTable=offsets,
        ExtendedOffsetTableLengths=lengths,
    )
    parsed, encoded, pixel = _encoded(source)
    assert "7FE00001" not in encoded.metadata  # encoding, not metadata
    info, got = read_frames(parsed, pixel, encoded.metadata)
    assert list(got) == frames
    assert info.extended_offset_table


def test_a_video_is_one_stream() -> None:
    fragments = [b"\x00\x00\x01\xb3", b"rest of the stream"]
    source = _encapsulated(
        "1.2.840.10008.1.2.4.100", encapsulate([b"".join(fragments)], fragments_per_frame=2), 1
    )
    parsed, _, pixel = _encoded(source)
    info, stream = read_video(parsed, pixel)
    assert stream == b"".join(fragments)
    assert info.number_of_frames == 1
    [lengths] = info.fragments
    assert len(lengths) == 2 and sum(lengths) == len(stream)
