"""Our names of pynetdicom's SOP Classes, and every storage SOP Class."""

from __future__ import annotations

from pynetdicom import sop_class

from dicomweb_archive.dimse import sop_classes


def test_the_uids_are_pynetdicoms() -> None:
    for name in ("Verification", *(n for n in vars(sop_classes) if "QueryRetrieve" in n)):
        assert getattr(sop_classes, name) == getattr(sop_class, name), name
    assert len(sop_classes.QUERY_RETRIEVE) == 6


def test_storage_includes_the_retired_classes_and_nothing_of_other_services() -> None:
    storage = sop_classes.storage_sop_classes()
    assert "1.2.840.10008.5.1.4.1.1.2" in storage  # CT Image Storage
    assert "1.2.840.10008.5.1.4.1.1.6" in storage  # Ultrasound Image Storage (Retired)
    assert "1.2.840.10008.1.20.1" not in storage  # Storage Commitment Push Model
    assert "1.2.840.10008.1.3.10" not in storage  # Media Storage Directory Storage
    assert len(storage) == len(set(storage)) > 200
    # Registered: pynetdicom serves C-STORE of a retired class with its storage service.
    assert sop_class.uid_to_service_class("1.2.840.10008.5.1.4.1.1.6").__name__ == (
        "StorageServiceClass"
    )
