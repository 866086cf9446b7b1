"""VRs of raw elements, from the file or the dictionaries; sequence items."""

from __future__ import annotations

import io

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomweb_archive.deidentify.elements import items_of, vr_of


def _implicit() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.ReferencedImageSequence = Sequence([Dataset()])
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = "1.2.3"
    ds.private_block(0x0009, "GEMS_ACQU_01", create=True).add_new(0x24, "DS", "1")
    out = io.BytesIO()
    ds.save_as(out, implicit_vr=True, little_endian=True)
    return pydicom.dcmread(io.BytesIO(out.getvalue()), force=True)


def test_vrs_of_implicit_raw_elements() -> None:
    ds = _implicit()
    assert ds.get_item(0x00100010).VR is None  # raw, as read
    assert vr_of(ds, 0x00100010) == "PN"
    assert vr_of(ds, 0x00081140) == "SQ"
    assert vr_of(ds, 0x00091024) == "DS"  # pydicom's private dictionary, by its creator


def test_items_of() -> None:
    ds = _implicit()
    [item] = items_of(ds, 0x00081140)
    assert item.ReferencedSOPInstanceUID == "1.2.3"
    assert items_of(ds, 0x00100010) == []
