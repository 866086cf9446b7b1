"""Dates moved by whole days (Retain Longitudinal Temporal Information, Modified Dates).

Moving every date of a patient by the same number of days keeps intervals and
times of day; partial dates (a year, a year and month) move by whole years.
"""

from __future__ import annotations

import datetime

DUMMY_DATE = "19000101"


def shift_date(value: str, days: int) -> str:
    """A DA value ``YYYYMMDD`` moved back ``days`` days; an unreadable one becomes a dummy."""
    text = value.strip()
    try:
        day = datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return DUMMY_DATE
    if len(text) != 8:
        return DUMMY_DATE
    return (day - datetime.timedelta(days=days)).strftime("%Y%m%d")


def shift_datetime(value: str, days: int) -> str:
    """A DT value with its date part moved back ``days`` days; time and offset kept."""
    text = value.strip()
    if len(text) >= 8 and text[:8].isdigit():
        shifted = shift_date(text[:8], days)
        return shifted + text[8:] if shifted != DUMMY_DATE else DUMMY_DATE
    if len(text) >= 4 and text[:4].isdigit():
        rest = text[4:]
        years = round(days / 365.25)
        return f"{max(int(text[:4]) - years, 1):04d}{rest}"
    return DUMMY_DATE
