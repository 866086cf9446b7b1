"""The Basic Application Level Confidentiality Profile applied to one dataset (PS3.15 E.2, E.3).

Every element, at every nesting level, gets the action Table E.1-1 gives its tag
under the chosen options (:mod:`~dicomweb_archive.deidentify.table`); elements
the table does not list are kept, and kept sequences are cleaned item by item
(``K``: "unchanged for non-sequence attributes, cleaned for sequences").  How
each action is carried out:

- ``U`` and a UID under ``D``: a keyed-hash UID (``2.25.…``, same key, same UID),
  well-known UIDs of the standard (``1.2.840.10008.…``) kept;
- ``D``: a dummy of the VR; Patient ID gets a keyed-hash pseudonym so one
  patient stays one patient; a sequence under ``D`` (Content Sequence, Graphic
  Annotation Sequence) is kept with its free text (ST, LT, UT, UC) replaced;
- ``C``: dates moved back by the patient's keyed shift (Modified Dates option),
  sequences cleaned item by item, text cleaned of the identifying values found
  in the same dataset (names, IDs, dates the profile removes); a binary value
  (overlay, curve) cannot be cleaned and is removed.

Private attributes go unless kept (:class:`~dicomweb_archive.deidentify.private.PrivatePolicy`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from dicomweb_archive.deidentify import dates, table
from dicomweb_archive.deidentify.elements import items_of, vr_of
from dicomweb_archive.deidentify.keys import PseudonymKey
from dicomweb_archive.deidentify.private import PrivatePolicy
from dicomweb_archive.deidentify.profile import Profile
from dicomweb_archive.errors import BurnedInAnnotationError, MalformedDicomError

PATIENT_ID = 0x00100020
MODALITY = 0x00080060
BURNED_IN_ANNOTATION = 0x00280301
PIXEL_DATA_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)
PATIENT_IDENTITY_REMOVED = 0x00120062
DEIDENTIFICATION_METHOD = 0x00120063
DEIDENTIFICATION_METHOD_CODE_SEQUENCE = 0x00120064
LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED = 0x00280303
#: File meta elements naming the sending and receiving devices (Retain Device Identity keeps them).
FILE_META_DEVICE_TAGS = (0x00020016, 0x00020017, 0x00020018, 0x00020026, 0x00020027, 0x00020028)
#: File meta elements a private party filled.
FILE_META_PRIVATE_TAGS = (0x00020100, 0x00020102)
#: Modalities whose images often carry text burned into the pixels.
BURNS_IN = frozenset({"US", "SC", "OT", "XA"})
STANDARD_UID_ROOT = "1.2.840.10008."
DUMMY_TEXT = "ANONYMIZED"
FREE_TEXT_VRS = frozenset({"ST", "LT", "UT", "UC"})
TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT", "DA", "DT", "TM"})
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
NUMBER_VRS = frozenset({"FL", "FD", "SL", "SS", "SV", "UL", "US", "UV", "AT"})
#: Identifying values shorter than this are not looked for in text (``M``, ``1``).
MIN_IDENTIFIER = 3


def dummy(vr: str) -> Any:
    """A value of ``vr`` that says nothing."""
    if vr in NUMBER_VRS:
        return 0
    if vr in BINARY_VRS:
        return b"\x00\x00"
    return {
        "AS": "000Y",
        "DA": dates.DUMMY_DATE,
        "DT": dates.DUMMY_DATE + "000000",
        "TM": "000000",
        "DS": "0",
        "IS": "0",
        "UR": "",
    }.get(vr, DUMMY_TEXT)


def burned_in_reason(burned: str, modality: str) -> str | None:
    """Why pixels with this Burned In Annotation and Modality are refused; None: they are not."""
    burned, modality = burned.strip().upper(), modality.strip().upper()
    if burned == "YES":
        return (
            "Burned In Annotation (0028,0301) is YES: its pixels show text that "
            "de-identification does not remove"
        )
    if burned != "NO" and modality in BURNS_IN:
        return (
            f"Burned In Annotation (0028,0301) is not given and {modality} images often "
            "carry text in their pixels, which de-identification does not remove"
        )
    return None


def check_burned_in(ds: Dataset, name: str) -> None:
    """Refuse pixels that may show identifying text (Burned In Annotation YES, or unknown)."""
    if not any(tag in ds for tag in PIXEL_DATA_TAGS):
        return
    reason = burned_in_reason(_text(ds, BURNED_IN_ANNOTATION), _text(ds, MODALITY))
    if reason is not None:
        raise BurnedInAnnotationError(f"{name}: {reason} (--allow-burned-in to store it anyway)")


@dataclass(frozen=True)
class Deidentifier:
    """The profile, the key and the private policy; :meth:`apply` de-identifies a dataset."""

    profile: Profile
    key: PseudonymKey
    allow_burned_in: bool = False
    #: Private attributes kept beyond the profile's (``--keep-private``).
    keep_private: frozenset[str] = frozenset()

    def apply(self, ds: Dataset, name: str = "") -> None:
        """De-identify ``ds`` (and its ``file_meta``) in place; ``name`` names it in errors."""
        if not self.allow_burned_in:
            check_burned_in(ds, name)
        rules = table.rules(self.profile.options)
        walk = _Walk(self, rules, name)
        if self.profile.shifts_dates:
            walk.shift_days = self.key.date_shift_days(_text(ds, PATIENT_ID))
        if any(a == "C" for a in rules.exact.values()):
            walk.identifiers = _identifiers(ds, rules)
        PrivatePolicy(self.keep_private, "retain-safe-private" in self.profile.options).apply(ds)
        walk.dataset(ds, None)
        file_meta = getattr(ds, "file_meta", None)
        if file_meta is not None:
            walk.dataset(file_meta, None)
            drop: tuple[int, ...] = FILE_META_PRIVATE_TAGS
            if "retain-device-identity" not in self.profile.options:
                drop += FILE_META_DEVICE_TAGS
            for tag in drop:
                if tag in file_meta:
                    del file_meta[tag]
        self.record(ds)

    def uid(self, original: str) -> str:
        """The UID ``original`` becomes (itself with the Retain UIDs option)."""
        if "retain-uids" in self.profile.options or original.startswith(STANDARD_UID_ROOT):
            return original
        return self.key.uid(original)

    def record(self, ds: Dataset) -> None:
        """Say what was done (PS3.15 E.1.1, PS3.3 C.7.1.1)."""
        ds[PATIENT_IDENTITY_REMOVED] = DataElement(PATIENT_IDENTITY_REMOVED, "CS", "YES")
        ds[DEIDENTIFICATION_METHOD] = DataElement(
            DEIDENTIFICATION_METHOD, "LO", self.profile.method()
        )
        items = []
        for code in self.profile.codes():
            item = Dataset()
            item.CodeValue = code.value
            item.CodingSchemeDesignator = code.scheme
            item.CodeMeaning = code.meaning
            items.append(item)
        ds[DEIDENTIFICATION_METHOD_CODE_SEQUENCE] = DataElement(
            DEIDENTIFICATION_METHOD_CODE_SEQUENCE, "SQ", Sequence(items)
        )
        temporal = (
            "MODIFIED"
            if self.profile.shifts_dates
            else "UNMODIFIED"
            if self.profile.keeps_dates
            else "REMOVED"
        )
        ds[LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED] = DataElement(
            LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED, "CS", temporal
        )


@dataclass
class _Walk:
    """One dataset's de-identification: the actions, element by element, item by item."""

    deidentifier: Deidentifier
    rules: table.Rules
    name: str
    shift_days: int | None = None
    identifiers: list[str] = field(default_factory=list)

    def dataset(self, ds: Dataset, context: table.Action | None) -> None:
        """Every element of ``ds``; ``context`` is ``D`` or ``C`` inside such a sequence."""
        for tag in list(ds.keys()):
            try:
                self.element(ds, int(tag), context)
            except (MalformedDicomError, BurnedInAnnotationError):
                raise
            except Exception as exc:  # pydicom raises many kinds on odd values
                raise MalformedDicomError(
                    f"{self.name}: element ({tag >> 16:04X},{tag & 0xFFFF:04X}) cannot be "
                    f"de-identified: {exc}"
                ) from exc

    def element(self, ds: Dataset, tag: int, context: table.Action | None) -> None:
        if (tag >> 16) % 2:  # kept by the private policy
            action: table.Action = "K"
        else:
            action = self.rules.action(tag) or "K"
        if action == "X":
            del ds[tag]
            return
        vr = vr_of(ds, tag)
        if action == "K":
            if vr == "SQ":
                self.items(ds, tag, context)
            elif context is not None and vr in FREE_TEXT_VRS:
                self.element_as(ds, tag, vr, context)
            return
        self.element_as(ds, tag, vr, action)

    def element_as(self, ds: Dataset, tag: int, vr: str, action: table.Action) -> None:
        if action == "Z":
            ds[tag] = DataElement(tag, vr, Sequence() if vr == "SQ" else None)
        elif vr == "SQ":
            # D: kept, its free text replaced; C: cleaned; U (X/Z/U*): its UIDs replaced.
            self.items(ds, tag, action if action in ("D", "C") else None)
        elif vr == "UI" and action in ("U", "D", "C"):
            self.replace_uids(ds, tag)
        elif action == "C":
            self.clean(ds, tag, vr)
        elif tag == PATIENT_ID:
            original = _text(ds, tag)
            ds[tag] = DataElement(tag, vr, self.deidentifier.key.identifier("patient", original))
        else:  # D, and U of a value that is not a UID
            ds[tag] = DataElement(tag, vr, dummy(vr))

    def items(self, ds: Dataset, tag: int, context: table.Action | None) -> None:
        for item in items_of(ds, tag):
            self.dataset(item, context)

    def replace_uids(self, ds: Dataset, tag: int) -> None:
        values = _values(ds[tag].value)
        new = [
            self.deidentifier.uid(v) if v else v for v in (str(v).strip("\x00 ") for v in values)
        ]
        ds[tag] = DataElement(tag, "UI", new if len(new) != 1 else new[0])

    def clean(self, ds: Dataset, tag: int, vr: str) -> None:
        if vr in ("DA", "DT", "TM"):
            self.clean_temporal(ds, tag, vr)
        elif vr in TEXT_VRS and vr != "PN":
            values = [_scrub(str(v), self.identifiers) for v in _values(ds[tag].value)]
            ds[tag] = DataElement(tag, vr, values if len(values) != 1 else values[0])
        elif vr == "PN":
            ds[tag] = DataElement(tag, vr, None)
        else:  # binary (overlays, curves) and numbers cannot be cleaned of text
            del ds[tag]

    def clean_temporal(self, ds: Dataset, tag: int, vr: str) -> None:
        days = self.shift_days
        if days is None:
            ds[tag] = DataElement(tag, vr, dummy(vr))
            return
        if vr == "TM":  # whole days: the time of day stays
            return
        shift = dates.shift_date if vr == "DA" else dates.shift_datetime
        values = [shift(str(v), days) if str(v).strip() else "" for v in _values(ds[tag].value)]
        ds[tag] = DataElement(tag, vr, values if len(values) != 1 else values[0])


def _values(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, MultiValue | list | tuple):
        return list(value)
    return [value]


def _text(ds: Dataset, tag: int) -> str:
    if tag not in ds:
        return ""
    value = ds[tag].value
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, MultiValue | list):
        value = "\\".join(str(v) for v in value)
    return str(value or "").strip(" \x00")


def _identifiers(ds: Dataset, rules: table.Rules) -> list[str]:
    """Text values the profile removes from ``ds``, longest first: what cleaning looks for."""
    found: set[str] = set()

    def collect(item: Dataset) -> None:
        for base_tag in list(item.keys()):  # tags: iterating a Dataset converts values
            tag = int(base_tag)
            if (tag >> 16) % 2:
                continue
            action = rules.action(tag)
            vr = vr_of(item, tag)
            if vr == "SQ":
                for child in items_of(item, tag):
                    collect(child)
            elif action not in (None, "K", "C") and vr in TEXT_VRS:
                for value in _values(item[tag].value):
                    text = str(value).strip(" \x00")
                    found.add(text)
                    if vr == "PN":
                        found.update(re.split(r"[\^=]+", text))

    collect(ds)
    return sorted((f for f in found if len(f) >= MIN_IDENTIFIER), key=len, reverse=True)


def _scrub(text: str, identifiers: list[str]) -> str:
    for identifier in identifiers:
        text = re.sub(re.escape(identifier), "*" * len(identifier), text, flags=re.IGNORECASE)
    return text
