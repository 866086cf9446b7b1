"""DA, TM and DT values (PS3.5 6.2) checked strictly: ASCII digits and real calendar values.

A query value such as ``20241301`` or ``2599`` has the right shape but names no
day or time; matching it would answer an empty list, as if nothing had been
found, where the client made a mistake it should hear about.
"""

from __future__ import annotations

import calendar
import re
from typing import Final

_DATE: Final = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_TIME: Final = re.compile(r"([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:\.[0-9]{1,6})?)?)?")
_DATETIME: Final = re.compile(
    r"([0-9]{4})(?:([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})"
    r"(?:\.[0-9]{1,6})?)?)?)?)?)?(?:([+-])([0-9]{2})([0-9]{2}))?"
)


def _day_exists(year: int, month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(max(year, 1), month)[1]


def _clock(hours: str | None, minutes: str | None, seconds: str | None) -> bool:
    # 60 seconds: a leap second (PS3.5 allows it).
    limits = ((hours, 23), (minutes, 59), (seconds, 60))
    return all(part is None or int(part) <= limit for part, limit in limits)


def is_date(text: str) -> bool:
    """``YYYYMMDD`` naming a day of the calendar."""
    found = _DATE.fullmatch(text)
    return found is not None and _day_exists(*map(int, found.groups()))


def is_time(text: str) -> bool:
    """``HH[MM[SS[.F{1,6}]]]`` within a day (a leap second allowed)."""
    found = _TIME.fullmatch(text)
    return found is not None and _clock(*found.groups())


def is_datetime(text: str) -> bool:
    """``YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]`` with each part in its range."""
    found = _DATETIME.fullmatch(text)
    if found is None:
        return False
    year, month, day, hours, minutes, seconds, sign, offset_hours, offset_minutes = found.groups()
    if month is not None and not _day_exists(int(year), int(month), int(day or 1)):
        return False
    if sign is not None and (int(offset_hours) > 14 or int(offset_minutes) > 59):
        return False
    return _clock(hours, minutes, seconds)
