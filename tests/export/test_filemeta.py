"""The file meta group: the bytes ``dcmwrite(enforce_file_format=True)`` writes."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset

from dicomweb_archive import tags
from dicomweb_archive.errors import FastPathUnsupportedError
from dicomweb_archive.export.filemeta import file_meta_group

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"


def _pydicom_group(meta: FileMetaDataset | None, sop: str) -> bytes:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CT, sop
    if meta is not None:
        ds.file_meta = meta
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=True, implicit_vr=False, little_endian=True)
    written = out.getvalue()
    length = int.from_bytes(written[140:144], "little")
    return written[132 : 144 + length]


def test_completed_as_dcmwrite_completes_it() -> None:
    document = {
        tags.SOPClassUID: {"vr": "UI", "Value": [CT]},
        tags.SOPInstanceUID: {"vr": "UI", "Value": ["1.2.3.4"]},
    }
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = EXPLICIT
    assert file_meta_group(None, document, EXPLICIT, "1.2.3.4") == _pydicom_group(meta, "1.2.3.4")


def test_stored_values_are_kept() -> None:
    stored = {
        tags.ImplementationClassUID: {"vr": "UI", "Value": ["1.2.826.0.1.3680043.9.1"]},
        tags.ImplementationVersionName: {"vr": "SH", "Value": ["SCANNER 1"]},
        "00020016": {"vr": "AE", "Value": ["MODALITY"]},
    }
    document = {
        tags.SOPClassUID: {"vr": "UI", "Value": [CT]},
        tags.SOPInstanceUID: {"vr": "UI", "Value": ["1.2.3.4"]},
    }
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = EXPLICIT
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.9.1"
    meta.ImplementationVersionName = "SCANNER 1"
    meta.SourceApplicationEntityTitle = "MODALITY"
    assert file_meta_group(stored, document, EXPLICIT, "1.2.3.4") == _pydicom_group(meta, "1.2.3.4")


def test_what_dcmwrite_would_refuse_or_change_is_left_to_it() -> None:
    document = {tags.SOPInstanceUID: {"vr": "UI", "Value": ["1.2.3.4"]}}
    with pytest.raises(FastPathUnsupportedError, match="SOP Class UID"):
        file_meta_group(None, document, EXPLICIT, "1.2.3.4")
    stray = {"00080016": {"vr": "UI", "Value": [CT]}}
    with pytest.raises(FastPathUnsupportedError, match="outside group 0002"):
        file_meta_group(stray, document, EXPLICIT, "1.2.3.4")
