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
