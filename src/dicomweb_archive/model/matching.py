"""QIDO-RS attribute matching (PS3.4 C.2.2.2, PS3.18 8.3.4); pure functions.

A key is matched against the DICOM JSON element of a row:

- empty value: universal match;
- ``*`` and ``?`` wildcards on string VRs;
- ``a-b``, ``a-`` and ``-b`` ranges on DA, TM and DT;
- a list of UIDs separated by ``\\`` or ``,`` on UI, and a list of modalities
  so separated on ModalitiesInStudy (``CT,MR``: a study of either matches);
- otherwise single value matching;
- a sequence path ``00081111.00081150`` matches when any item of the sequence
  matches the rest of the path (PS3.18 8.3.4.1, sequence matching).

Person names match case-insensitively: both sides are compared case-folded
(:func:`fold_name`, Unicode full case folding), wildcards and all.  Other VRs
match case-sensitively.  A multi-valued attribute matches when any of its values
(for a person name, any of its component groups) does.  A value that
cannot be one of its VR (``20241301`` as a date, ``1_0`` as a number, a UID
with letters, any value on a binary VR) raises :class:`InvalidQueryError`:
matching it would answer "nothing found" to what is a mistake.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from dicomweb_archive import tags
from dicomweb_archive.errors import InvalidInputError
from dicomweb_archive.model.temporal import is_date, is_datetime, is_time
from dicomweb_archive.numerals import parse_decimal, parse_integer
from dicomweb_archive.uids import is_valid_uid

Matcher = Callable[[dict[str, Any] | None], bool]

_WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
_RANGE_VRS = frozenset({"DA", "TM", "DT"})
_VALID_TEMPORAL = {"DA": is_date, "TM": is_time, "DT": is_datetime}
_INTEGER_VRS = frozenset({"IS", "US", "SS", "UL", "SL", "UV", "SV"})
_DECIMAL_VRS = frozenset({"DS", "FL", "FD"})
#: VRs whose values a query cannot name: bytes, or items rather than values.
_UNMATCHABLE_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ"})
_AGE = re.compile(r"[0-9]{3}[DWMY]")


class InvalidQueryError(InvalidInputError):
    """A query key or value that cannot be matched (HTTP 400)."""


#: Longest wildcard pattern a query may hold: matching costs up to the
#: pattern's length times the value's, so an unbounded pattern is a lever.
MAX_PATTERN_LENGTH = 256


def fold_name(text: str) -> str:
    """A person name as matched: case-folded (so ``Straße`` and ``STRASSE`` are one)."""
    return text.casefold()


@lru_cache(maxsize=1024)
def _wildcard(pattern: str) -> Callable[[str], bool]:
    """A linear-time test of ``*`` and ``?`` wildcards.

    A regular expression with ``.*`` per ``*`` backtracks exponentially on a
    pattern like ``*?*?*?*?~``.  Here the pattern is split at ``*`` into
    segments of literals and ``?``, each one matching exactly its length: the
    first must start the value, the last end it, and each middle one is taken
    at its leftmost place after the previous one (leftmost is never worse).
    Every segment is searched once, so the cost is at most the value's length
    times the pattern's, without any backtracking across segments.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidQueryError(f"a wildcard pattern is limited to {MAX_PATTERN_LENGTH} characters")
    segments = [
        re.compile("".join("." if c == "?" else re.escape(c) for c in part), re.DOTALL)
        for part in pattern.split("*")
    ]
    widths = [len(part) for part in pattern.split("*")]
    if len(segments) == 1:
        only = segments[0]
        return lambda value: only.fullmatch(value) is not None
    first, *middle, last = segments
    middle_widths = widths[1:-1]

    def matches(value: str) -> bool:
        end = len(value) - widths[-1]
        if end < widths[0] or not first.match(value) or not last.fullmatch(value, end):
            return False
        position = widths[0]
        for segment, width in zip(middle, middle_widths, strict=True):
            if width == 0:
                continue
            found = segment.search(value, position, end)
            if found is None:
                return False
            position = found.end()
        return True

    return matches


def element_strings(element: dict[str, Any] | None, vr: str) -> list[str]:
    """The values a key is matched against: a person name's component groups
    (each whole, ``Doe^Jane``; empty groups left out), other values as text."""
    if element is None:
        return []
    values = element.get("Value") or []
    out: list[str] = []
    for value in values:
        if value is None:
            continue
        if vr == "PN" and isinstance(value, dict):
            out.extend(str(v) for v in value.values() if v)
        else:
            out.append(str(value))
    return out


def _check_range_value(vr: str, value: str) -> None:
    if value and not _VALID_TEMPORAL[vr](value):
        raise InvalidQueryError(f"{value!r} is not a valid {vr} value")


def _normalise_time(value: str, fill: str) -> str:
    digits = value.replace(":", "")
    whole, _, fraction = digits.partition(".")
    whole = (whole + fill * 6)[:6]
    return whole + "." + (fraction + fill * 6)[:6]


def _range_matcher(vr: str, text: str) -> Matcher:
    low, _, high = text.partition("-")
    low, high = low.strip(), high.strip()
    if not low and not high:
        raise InvalidQueryError(f"the range {text!r} has no bound")
    for bound in (low, high):
        _check_range_value(vr, bound)
    if vr == "TM":
        low = _normalise_time(low, "0") if low else ""
        high = _normalise_time(high, "9") if high else ""
    if vr != "DT" and low and high and low > high:
        raise InvalidQueryError(f"the range {text!r} ends before it starts")

    def matches(element: dict[str, Any] | None) -> bool:
        for value in element_strings(element, vr):
            candidate = _normalise_time(value, "0") if vr == "TM" else value
            if (not low or candidate >= low) and (not high or candidate[: len(high)] <= high):
                return True
        return False

    return matches


def _number_matcher(vr: str, text: str) -> Matcher:
    try:
        number = parse_integer(text) if vr in _INTEGER_VRS else parse_decimal(text)
    except ValueError as exc:
        raise InvalidQueryError(f"{text!r} is not a number of VR {vr}") from exc

    def numeric(element: dict[str, Any] | None) -> bool:
        for value in (element or {}).get("Value") or []:
            try:
                if float(value) == number:
                    return True
            except (TypeError, ValueError):
                continue
        return False

    return numeric


def _uid_matcher(text: str) -> Matcher:
    wanted = {v for v in re.split(r"[\\,]", text) if v}
    invalid = sorted(v for v in wanted if not is_valid_uid(v))
    if invalid or not wanted:
        raise InvalidQueryError(f"{(invalid or [text])[0]!r} is not a UID")
    return lambda element: any(v in wanted for v in element_strings(element, "UI"))


def matcher(vr: str, text: str) -> Matcher:
    """The test one query value puts to an element of VR ``vr``."""
    if text == "" or text == "*":
        return lambda element: True
    if vr in _UNMATCHABLE_VRS:
        raise InvalidQueryError(f"attributes of VR {vr} cannot be matched, only returned")
    if vr == "UI":
        return _uid_matcher(text)
    is_single_datetime = vr == "DT" and is_datetime(text)
    if vr in _RANGE_VRS and "-" in text and not is_single_datetime:
        return _range_matcher(vr, text)
    if vr in _RANGE_VRS:
        _check_range_value(vr, text)
    if vr == "AS" and _AGE.fullmatch(text) is None:
        raise InvalidQueryError(f"{text!r} is not an age such as 045Y")
    if vr in _INTEGER_VRS or vr in _DECIMAL_VRS:
        return _number_matcher(vr, text)
    if vr == "PN":
        return _name_matcher(text)
    if vr in _WILDCARD_VRS and ("*" in text or "?" in text):
        test = _wildcard(text)
        return lambda element: any(test(v) for v in element_strings(element, vr))
    return lambda element: text in element_strings(element, vr)


def _name_matcher(text: str) -> Matcher:
    folded = fold_name(text)
    if "*" in text or "?" in text:
        test = _wildcard(folded)
        return lambda element: any(test(fold_name(v)) for v in element_strings(element, "PN"))
    return lambda element: any(fold_name(v) == folded for v in element_strings(element, "PN"))


def value_list(tag: str, text: str) -> list[str] | None:
    """The values of a key that lists several, any of which matches; None: one value.

    Besides UIDs, ModalitiesInStudy takes a list (PS3.4 C.6.1.1.3.2): viewers
    join its values with ``,`` (OHIF) or ``\\`` (as DIMSE does).
    """
    if tag != tags.ModalitiesInStudy:
        return None
    values = [value for value in re.split(r"[\\,]", text) if value]
    return values if len(values) > 1 else None


def _any_of(tests: list[Matcher]) -> Matcher:
    return lambda element: any(test(element) for test in tests)


def path_matcher(path: list[str], vr: str, text: str) -> Matcher:
    """The test for a tag path: the leaf's matcher applied inside sequence items."""
    listed = value_list(path[-1], text)
    test = matcher(vr, text) if listed is None else _any_of([matcher(vr, v) for v in listed])
    if text == "":
        return test
    for tag in reversed(path[1:]):

        def inside(element: dict[str, Any] | None, tag: str = tag, test: Matcher = test) -> bool:
            items = (element or {}).get("Value") or []
            return any(isinstance(item, dict) and test(item.get(tag)) for item in items)

        test = inside
    return test
