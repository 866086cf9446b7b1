"""Study attributes the QIDO-RS index keeps as SQL columns, and the SQL narrowing a search.

Matching stays the matcher's (:mod:`dicomweb_archive.model.matching`); SQL only
spares it the rows that cannot match.  Each condition built here is a
pre-filter: every row the matcher would accept passes it, so a search answers
exactly what it answered without the columns, only sooner.

A column holds the attribute's one value as the study's row (or, lacking it,
its shared attributes) shows it, ``''`` when it has none.  ``ModalitiesInStudy``
is many-valued by nature, kept as ``\\CT\\MR\\``.  ``StudyDate`` needs no column:
the study order (``sort_key``, ``date|time|uid``) begins with it, so a date
range is a range of the order's index and a search in it stops after its page.
That holds for dates of eight digits; a study with another date, or with
several values in a single-valued column (both written wrongly), is
*irregular*: it is ordered after the rest and always a candidate, left to the
matcher.  Values are assumed to hold no U+10FFFF (the last code point, used as
the end of a prefix range).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dicomweb_archive import tags
from dicomweb_archive.types import JSONDataset

#: Separator of the values of a many-valued column (it cannot occur in a CS value).
_SEPARATOR = "\\"
_WILDCARDS = ("*", "?")
#: After every character a value holds: ``prefix + _LAST`` ends the values starting so.
_LAST = "\U0010ffff"
_EIGHT_DIGITS = re.compile(r"[0-9]{8}")


def _strings(attributes: JSONDataset, tag: str) -> list[str] | None:
    """The element's values when they are all strings, else None."""
    values = (attributes.get(tag) or {}).get("Value") or []
    strings = [v for v in values if isinstance(v, str)]
    return strings if len(strings) == len(values) else None


def _prefix(text: str) -> str:
    """What a wildcard pattern's matches all start with."""
    ends = [text.find(w) for w in _WILDCARDS if w in text]
    return text[: min(ends)] if ends else text


@dataclass(frozen=True)
class Column:
    """One SQL column of the ``studies`` table: a tag of the given VR."""

    name: str
    tag: str
    vr: str
    many: bool = False

    def value(self, attributes: JSONDataset) -> str | None:
        """What the column holds for a study with these attributes; None: irregular."""
        strings = _strings(attributes, self.tag)
        if strings is None:
            return None
        if self.many:
            return _SEPARATOR + _SEPARATOR.join(strings) + _SEPARATOR
        if len(strings) > 1:
            return None
        return strings[0] if strings else ""

    def condition(self, text: str) -> tuple[str, list[str]] | None:
        """SQL every regular row matching ``text`` satisfies; None: it would not narrow."""
        if self.many:
            if any(w in text for w in _WILDCARDS):
                return None
            return f"instr({self.name}, ?) > 0", [_SEPARATOR + text + _SEPARATOR]
        if any(w in text for w in _WILDCARDS):
            prefix = _prefix(text)
            if not prefix:
                return None
            return f"{self.name} >= ? AND {self.name} < ?", [prefix, prefix + _LAST]
        return f"{self.name} = ?", [text]


#: The columns of the ``studies`` table, as commonly matched by worklists and viewers.
STUDY_COLUMNS = (
    Column("patient_id", tags.PatientID, "LO"),
    Column("accession_number", tags.AccessionNumber, "SH"),
    Column("modalities", tags.ModalitiesInStudy, "CS", many=True),
)
_BY_TAG = {column.tag: column for column in STUDY_COLUMNS}


def is_irregular(attributes: JSONDataset, values: list[str | None]) -> bool:
    """Whether a study with these attributes and column values escapes the columns."""
    dates = _strings(attributes, tags.StudyDate)
    regular_date = dates is not None and (
        not dates or (len(dates) == 1 and _EIGHT_DIGITS.fullmatch(dates[0]) is not None)
    )
    return not regular_date or None in values


def _date_condition(text: str) -> tuple[str, list[str]]:
    # The order begins with the eight-digit date, then "|": a range of dates is
    # a range of the order (the matcher tests value >= low, value[:8] <= high).
    low, _, high = (bound.strip() for bound in text.partition("-"))
    if "-" not in text:
        low = high = text
    terms, args = [], []
    if low:
        terms.append("sort_key >= ?")
        args.append(low)
    if high:
        terms.append("sort_key < ?")
        args.append(high + _LAST)
    return " AND ".join(terms), args


def study_conditions(match: list[tuple[str, str, str]]) -> tuple[list[str], list[str]]:
    """SQL conditions (joined by AND) on regular rows, and their arguments, for a
    study search's keys (tag, VR, value)."""
    where: list[str] = []
    args: list[str] = []
    for tag, vr, text in match:
        if text in ("", "*"):
            continue
        found = None
        if tag == tags.StudyDate and vr == "DA":
            found = _date_condition(text)
        elif (column := _BY_TAG.get(tag)) is not None and vr == column.vr:
            found = column.condition(text)
        if found is not None:
            where.append(found[0])
            args.extend(found[1])
    return where, args
