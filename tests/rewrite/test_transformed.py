"""A P10 file transformed on the way out, as a conversion would."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

from dicomweb_archive import ConvertOptions
from dicomweb_archive.deidentify.deidentifier import Deidentifier
from dicomweb_archive.deidentify.keys import PseudonymKey
from dicomweb_archive.deidentify.profile import Profile
from dicomweb_archive.rewrite.transformed import transformed_p10
from dicomweb_archive.types import first_value

KEY = PseudonymKey(b"k" * 32)


def test_transformed_p10() -> None:
    source = Path(get_testdata_file("CT_small.dcm"))
    options = ConvertOptions(workers=1, deidentify=Deidentifier(Profile.parse("basic"), KEY))
    data, meta = transformed_p10(source.read_bytes(), "CT_small.dcm", options)
    original = pydicom.dcmread(source)
    ds = pydicom.dcmread(io.BytesIO(data))
    assert (
        ds.SOPInstanceUID
        == KEY.uid(original.SOPInstanceUID)
        == ds.file_meta.MediaStorageSOPInstanceUID
    )
    assert first_value(meta, "00080018") == ds.SOPInstanceUID
    assert ds.PatientIdentityRemoved == "YES" and not ds.PatientName
    assert ds.PixelData == original.PixelData
