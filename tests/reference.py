"""The real DICOM files shipped by pydicom and pydicom-data, and what each must do."""

from __future__ import annotations

import os
from pathlib import Path

import data_store
import pydicom.data


def reference_files() -> list[Path]:
    """Every file in pydicom's ``data/`` test folders and in pydicom-data."""
    roots = [
        Path(pydicom.data.__file__).parent / "test_files",
        Path(pydicom.data.__file__).parent / "charset_files",
        Path(pydicom.data.__file__).parent / "palettes",
        Path(data_store.__file__).parent / "data",
    ]
    found = []
    for root in roots:
        for folder, _, files in os.walk(root):
            found.extend(Path(folder, f) for f in files if not f.endswith((".py", ".pyc")))
    return sorted(found)


#: Files that must fail, with a fragment of the reason they must give.
EXPECTED_FAILURES = {
    "README.txt": "not a DICOM file",
    "README": "not a DICOM file",
    "README.md": "not a DICOM file",
    "FileInfo.txt": "not a DICOM file",
    "crayons.icc": "not a DICOM file",
    "rtplan.dump": "not a DICOM file",
    "rtstruct.dump": "not a DICOM file",
    "test1.json": "not a DICOM file",
    "test_PN.json": "not a DICOM file",
    "no_meta.dcm": "not a DICOM file",
    "MR_truncated.dcm": "Pixel Data at offset 1500 announces 8192 bytes but the file ends 8130",
    "rtplan_truncated.dcm": "Beam Sequence at offset 1418 announces 976 bytes but the file",
    "emri_small_jpeg_2k_lossless_too_short.dcm": "truncated or damaged",
    "bad_sequence.dcm": "is not a valid UID",
    # Datasets made to test one feature; they carry no study to file them under.
    "JPEGLSNearLossless_08.dcm": "StudyInstanceUID is missing",
    "JPEGLSNearLossless_16.dcm": "StudyInstanceUID is missing",
    "SC_rgb_jls_lossy_line.dcm": "StudyInstanceUID is missing",
    "SC_rgb_jls_lossy_sample.dcm": "StudyInstanceUID is missing",
    "UN_sequence.dcm": "StudyInstanceUID is missing",
    "empty_charset_LEI.dcm": "StudyInstanceUID is missing",
    "meta_missing_tsyntax.dcm": "StudyInstanceUID is missing",
    "nested_priv_SQ.dcm": "StudyInstanceUID is missing",
    "no_meta_group_length.dcm": "StudyInstanceUID is missing",
    "priv_SQ.dcm": "StudyInstanceUID is missing",
    "chrSQEncoding.dcm": "StudyInstanceUID is missing",
    "chrSQEncoding1.dcm": "StudyInstanceUID is missing",
    # Color Palette instances stand alone, outside any study.
    **{
        f"{name}.dcm": "StudyInstanceUID is missing"
        for name in (
            "fall",
            "hotiron",
            "hotmetalblue",
            "pet",
            "pet20step",
            "spring",
            "summer",
            "winter",
        )
    },
}

#: Valid DICOM files that hold no instance.
EXPECTED_SKIPS = {
    "DICOMDIR",
    "DICOMDIR-bigEnd",
    "DICOMDIR-empty.dcm",
    "DICOMDIR-implicit",
    "DICOMDIR-nooffset",
    "DICOMDIR-nopatient",
    "DICOMDIR-reordered",
}
