"""Study attributes the QIDO-RS index keeps as SQL columns; the SQL of a study search's keys.

Matching is the matcher's (:mod:`dicomweb_archive.model.matching`); each
condition built here selects, among the *regular* studies (below), exactly the
rows the matcher accepts for its key.  A search whose keys all have conditions
is answered by SQL alone, its page (``LIMIT``/``OFFSET``) included; a key
without one is left to the matcher, on the rows the conditions keep.

A column holds the attribute's one value as the study's row (or, lacking it,
its shared attributes) shows it, a person name case-folded as the matcher
compares it; NULL when it has none.  ``ModalitiesInStudy`` is many-valued by
nature, kept as ``\\CT\\MR\\``.  ``StudyDate`` needs no column: the study
order (``sort_key``, ``date|time|uid``) begins with it, so a date range is a
range of the order's index.  ``StudyInstanceUID`` is the row's key.

A study escapes the columns, and is *irregular*, when one of its values is not
as a column can hold it: several values in a single-valued column (a person
name with several component groups included), a date that is not the row's
one date of eight digits, a UID other than the study's, a value holding NUL or
U+10FFFF (the end of a prefix range), or a backslash in ``ModalitiesInStudy``.
Irregular studies are ordered after the rest and always left to the matcher.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from dicomweb_archive import tags
from dicomweb_archive.model.matching import element_strings, fold_name, value_list
from dicomweb_archive.types import JSONDataset, first_value

#: Separator of the values of a many-valued column (it cannot occur in a CS value).
_SEPARATOR = "\\"
_WILDCARDS = ("*", "?")
#: After every character a value holds: ``prefix + _LAST`` ends the values starting so.
_LAST = "\U0010ffff"
#: What a regular value never holds: SQLite's text functions stop at NUL.
_UNSAFE = re.compile("[\x00\U0010ffff]")
_EIGHT_DIGITS = re.compile(r"[0-9]{8}")
#: The literal runs of a pattern (between wildcards).
_LITERALS = re.compile(r"[^*?]+")
#: Fewest characters in a row the text index looks up (its tokens are trigrams).
TEXT_RUN = 3
#: Most UIDs one StudyInstanceUID key is looked up by (more: left to the matcher).
MAX_UIDS = 500


@dataclass(frozen=True)
class Condition:
    """SQL on the ``studies`` table selecting exactly the regular rows one key matches."""

    sql: str
    args: tuple[str, ...]
    #: The index finding its rows in value order (None: none does).
    index: str | None = None
    #: Whether those rows are few by nature (one value, not a range).
    selective: bool = False
    #: A text-index search finding the same rows or more: (column, GLOB pattern).
    text: tuple[str, str] | None = None
    #: Whether it is a range of the study order (``sort_key``).
    order: bool = False


def _glob(pattern: str) -> str:
    """A wildcard pattern as SQLite's GLOB reads it (``[`` opens a class there)."""
    return pattern.replace("[", "[[]")


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

    @property
    def index(self) -> str:
        return f"studies_{self.name}"

    def cell(self, attributes: JSONDataset) -> tuple[str | None, bool]:
        """What the column holds for a study with these attributes, and whether
        the study is regular for it."""
        strings = element_strings(attributes.get(self.tag), self.vr)
        if self.vr == "PN":
            strings = [fold_name(s) for s in strings]
        if any(_UNSAFE.search(s) for s in strings):
            return None, False
        if self.many:
            regular = not any(_SEPARATOR in s for s in strings)
            return _SEPARATOR + _SEPARATOR.join(strings) + _SEPARATOR, regular
        if len(strings) > 1:
            return None, False
        return (strings[0] if strings else None), True

    def condition(self, text: str) -> Condition | None:
        """The condition of a key on this column; None: left to the matcher."""
        value = fold_name(text) if self.vr == "PN" else text
        if _UNSAFE.search(value):
            return None
        wildcard = any(w in value for w in _WILDCARDS)
        if self.many:
            listed = value_list(self.tag, value) or [value]
            if wildcard or any(_SEPARATOR in item for item in listed):
                return None
            items = tuple(_SEPARATOR + item + _SEPARATOR for item in listed)
            found = (self.name, f"*{_glob(items[0])}*") if len(items) == 1 else None
            sql = " OR ".join([f"instr({self.name}, ?) > 0"] * len(items))
            return Condition(f"({sql})", items, text=found)
        if not wildcard:
            return Condition(f"{self.name} = ?", (value,), self.index, selective=True)
        pattern = _glob(value)
        longest = max((len(run) for run in _LITERALS.findall(value)), default=0)
        found = (self.name, pattern) if longest >= TEXT_RUN else None
        prefix = _prefix(value)
        if not prefix:
            return Condition(f"{self.name} GLOB ?", (pattern,), text=found)
        return Condition(
            f"{self.name} >= ? AND {self.name} < ? AND {self.name} GLOB ?",
            (prefix, prefix + _LAST, pattern),
            self.index,
            text=found,
        )


#: The columns of the ``studies`` table: what worklists and viewers search by.
STUDY_COLUMNS = (
    Column("patient_name", tags.PatientName, "PN"),
    Column("patient_id", tags.PatientID, "LO"),
    Column("accession_number", tags.AccessionNumber, "SH"),
    Column("study_description", tags.StudyDescription, "LO"),
    Column("modalities", tags.ModalitiesInStudy, "CS", many=True),
)
_BY_TAG = {column.tag: column for column in STUDY_COLUMNS}


def study_cells(
    study: str, row: JSONDataset, attributes: JSONDataset
) -> tuple[list[str | None], bool]:
    """The column values of a study (its row, and its row merged into its
    shared attributes), and whether it is irregular."""
    cells = [column.cell(attributes) for column in STUDY_COLUMNS]
    dates = element_strings(attributes.get(tags.StudyDate), "DA")
    regular_date = not dates or (
        len(dates) == 1
        and _EIGHT_DIGITS.fullmatch(dates[0]) is not None
        and first_value(row, tags.StudyDate) == dates[0]
    )
    regular_uid = element_strings(attributes.get(tags.StudyInstanceUID), "UI") == [study]
    irregular = not (regular_date and regular_uid and all(regular for _, regular in cells))
    return [value for value, _ in cells], irregular


def _date_condition(text: str) -> Condition | None:
    # The order begins with the eight-digit date, then "|" (after every digit):
    # a range of dates is a range of the order (the matcher tests value >= low,
    # value <= high), and a study without a date sorts after them all.
    low, _, high = (bound.strip() for bound in text.partition("-"))
    if "-" not in text:
        low = high = text
    if not all(_EIGHT_DIGITS.fullmatch(bound) for bound in (low, high) if bound):
        return None
    terms, args = [], []
    if low:
        terms.append("sort_key >= ?")
        args.append(low)
    terms.append("sort_key < ?")
    args.append(high + _LAST if high else ":")
    return Condition(" AND ".join(terms), tuple(args), order=True)


def _uid_condition(text: str) -> Condition | None:
    uids = sorted({v for v in re.split(r"[\\,]", text) if v})
    if not uids or len(uids) > MAX_UIDS:
        return None
    marks = ", ".join("?" * len(uids))
    return Condition(f"study IN ({marks})", tuple(uids), "studies_study", selective=True)


def study_conditions(match: Iterable[tuple[str, str, str]]) -> tuple[list[Condition], bool]:
    """The conditions of a study search's keys (tag, VR, value), and whether
    they are the whole search (every key but universal ones has one)."""
    conditions: list[Condition] = []
    whole = True
    for tag, vr, text in match:
        if text in ("", "*"):
            continue
        found = None
        if tag == tags.StudyDate and vr == "DA":
            found = _date_condition(text)
        elif tag == tags.StudyInstanceUID and vr == "UI":
            found = _uid_condition(text)
        elif (column := _BY_TAG.get(tag)) is not None and vr == column.vr:
            found = column.condition(text)
        if found is None:
            whole = False
        else:
            conditions.append(found)
    return conditions, whole
