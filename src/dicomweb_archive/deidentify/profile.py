"""A de-identification profile: the Basic Profile and the options chosen, as named and coded.

``--deidentify basic,retain-uids,clean-descriptors`` names the Basic Application
Level Confidentiality Profile (PS3.15 E.2) and options of E.3; each has its code
in CID 7050 (PS3.16, read from pydicom's copy of the code tables), recorded in
the De-identification Method Code Sequence of every de-identified instance.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

from dicomweb_archive.deidentify.table import OPTIONS

BASIC: Final = "basic"
#: The CID 7050 concept of the profile and of each option (PS3.16).
CONCEPTS: Final = {
    BASIC: "BasicApplicationConfidentialityProfile",
    "retain-safe-private": "RetainSafePrivateOption",
    "retain-uids": "RetainUidsOption",
    "retain-device-identity": "RetainDeviceIdentityOption",
    "retain-institution-identity": "RetainInstitutionIdentityOption",
    "retain-patient-characteristics": "RetainPatientCharacteristicsOption",
    "retain-long-full-dates": "RetainLongitudinalTemporalInformationFullDatesOption",
    "retain-long-modified-dates": "RetainLongitudinalTemporalInformationModifiedDatesOption",
    "clean-descriptors": "CleanDescriptorsOption",
    "clean-structured-content": "CleanStructuredContentOption",
    "clean-graphics": "CleanGraphicsOption",
}


@dataclass(frozen=True)
class Code:
    """A coded concept: (code value, coding scheme, meaning)."""

    value: str
    scheme: str
    meaning: str


@dataclass(frozen=True)
class Profile:
    """The Basic Profile with a set of options (names from :data:`OPTIONS`)."""

    options: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> Profile:
        """``basic[,OPTION…]``; raises ValueError naming what is wrong."""
        names = [n.strip().lower() for n in text.split(",") if n.strip()]
        if not names or names[0] != BASIC:
            raise ValueError(f"{text!r}: a profile starts with {BASIC!r} (the Basic Profile)")
        unknown = [n for n in names[1:] if n not in OPTIONS]
        if unknown:
            raise ValueError(f"unknown option {unknown[0]!r}; options: {', '.join(OPTIONS)}")
        options = frozenset(names[1:])
        if {"retain-long-full-dates", "retain-long-modified-dates"} <= options:
            raise ValueError(
                "retain-long-full-dates and retain-long-modified-dates exclude each other"
            )
        return cls(options)

    @property
    def name(self) -> str:
        """The profile as ``--deidentify`` takes it (options in the table's order)."""
        return ",".join([BASIC, *(o for o in OPTIONS if o in self.options)])

    @property
    def shifts_dates(self) -> bool:
        return "retain-long-modified-dates" in self.options

    @property
    def keeps_dates(self) -> bool:
        return "retain-long-full-dates" in self.options

    @functools.cache  # noqa: B019 (profiles are few and immutable)
    def codes(self) -> list[Code]:
        """The CID 7050 codes of the profile and its options, in that order."""
        from pydicom.sr.codedict import codes  # a large table, loaded once it is needed

        concepts = [CONCEPTS[BASIC], *(CONCEPTS[o] for o in OPTIONS if o in self.options)]
        found = []
        for concept in concepts:
            code = getattr(codes.DCM, concept)
            found.append(Code(code.value, code.scheme_designator, code.meaning))
        return found

    def method(self) -> list[str]:
        """De-identification Method (0012,0063): who, then each code's meaning (LO values)."""
        return ["dicomweb-archive", *(c.meaning[:64] for c in self.codes())]
