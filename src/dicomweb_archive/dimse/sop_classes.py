"""The SOP Classes ``dwa listen`` provides besides storage (PS3.4 Annexes A and C).

pynetdicom makes its own names for them at import time, out of sight of type
checkers; these are the same UIDs, checked against them in the tests.
"""

from __future__ import annotations

from typing import Final

Verification: Final = "1.2.840.10008.1.1"
PatientRootQueryRetrieveInformationModelFind: Final = "1.2.840.10008.5.1.4.1.2.1.1"
PatientRootQueryRetrieveInformationModelMove: Final = "1.2.840.10008.5.1.4.1.2.1.2"
PatientRootQueryRetrieveInformationModelGet: Final = "1.2.840.10008.5.1.4.1.2.1.3"
StudyRootQueryRetrieveInformationModelFind: Final = "1.2.840.10008.5.1.4.1.2.2.1"
StudyRootQueryRetrieveInformationModelMove: Final = "1.2.840.10008.5.1.4.1.2.2.2"
StudyRootQueryRetrieveInformationModelGet: Final = "1.2.840.10008.5.1.4.1.2.2.3"

QUERY_RETRIEVE: Final = (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

#: Storage-named SOP Classes of other services (PS3.4 J, F): never C-STORE targets.
_NOT_STORED = ("Commitment", "Directory")


def storage_sop_classes() -> list[str]:
    """Every storage SOP Class UID, retired ones included.

    pynetdicom knows the current ones; the retired ones (Ultrasound Image
    Storage, Nuclear Medicine Image Storage, …) still arrive from old
    modalities and archives, so those pydicom's dictionary names are
    registered with pynetdicom's storage service on the way.
    """
    from pydicom._uid_dict import UID_dictionary
    from pynetdicom import AllStoragePresentationContexts, register_uid
    from pynetdicom.service_class import StorageServiceClass

    known = [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts]
    for uid, (name, kind, _, _, keyword) in sorted(UID_dictionary.items()):
        if kind != "SOP Class" or "Storage" not in name or uid in known:
            continue
        if any(word in name for word in _NOT_STORED):
            continue
        register_uid(uid, keyword, StorageServiceClass)
        known.append(uid)
    return known
