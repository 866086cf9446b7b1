"""Private attributes: removed, kept by creator, or kept where the dataset declares them safe."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dicomweb_archive.deidentify.private import PrivatePolicy


def _dataset() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.private_block(0x0009, "KEEP ME", create=True).add_new(0x01, "LO", "kept")
    ds.private_block(0x0009, "DROP ME", create=True).add_new(0x02, "LO", "dropped")
    ds.add_new(0x00090005, "LO", "reserved")  # outside any block
    item = Dataset()
    item.private_block(0x0011, "DROP ME", create=True).add_new(0x01, "LO", "nested")
    item.CodeValue = "1"
    ds.ReferencedImageSequence = Sequence([item])
    return ds


def test_strip_all() -> None:
    ds = _dataset()
    PrivatePolicy().apply(ds)
    assert sorted(int(t) for t in list(ds.keys())) == [0x00081140, 0x00100010]
    assert [int(t) for t in list(ds.ReferencedImageSequence[0].keys())] == [0x00080100]


def test_keep_by_creator() -> None:
    ds = _dataset()
    PrivatePolicy.keeping([" KEEP ME "]).apply(ds)
    assert ds.private_block(0x0009, "KEEP ME")[0x01].value == "kept"
    assert sorted(int(t) for t in list(ds.keys()) if t.group == 9) == [0x00090010, 0x00091001]


def test_declared_safe_blocks_and_elements() -> None:
    ds = _dataset()
    ds.private_block(0x0009, "MIXED", create=True).add_new(0x03, "LO", "safe part")
    ds.private_block(0x0009, "MIXED").add_new(0x04, "LO", "unsafe part")
    safe, mixed = Dataset(), Dataset()
    safe.PrivateGroupReference = 0x0009
    safe.PrivateCreatorReference = "DROP ME"
    safe.BlockIdentifyingInformationStatus = "SAFE"
    mixed.PrivateGroupReference = 0x0009
    mixed.PrivateCreatorReference = "MIXED"
    mixed.BlockIdentifyingInformationStatus = "MIXED"
    mixed.NonidentifyingPrivateElements = [0x03]
    ds.PrivateDataElementCharacteristicsSequence = Sequence([safe, mixed])
    PrivatePolicy(keep_declared_safe=True).apply(ds)
    values = {str(e.value) for e in ds.iterall() if e.tag.group == 9}
    assert values == {"DROP ME", "dropped", "MIXED", "safe part"}
    # Not declared for group 0011 in the nested item: removed.
    assert not any(t.group == 0x11 for t in list(ds.ReferencedImageSequence[0].keys()))
