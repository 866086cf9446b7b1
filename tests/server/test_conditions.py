"""Preconditions (RFC 9110 13.2.2): which answer each conditional request gets."""

from __future__ import annotations

import email.utils

import pytest
from starlette.requests import Request

from dicomweb_archive.server.conditions import http_date, last_modified, precondition

ETAG = '"abc"'
#: An answer's Last-Modified: 2024-01-02 03:04:05 UTC.
MODIFIED = 1704164645
AT, BEFORE, AFTER = (email.utils.formatdate(MODIFIED + d, usegmt=True) for d in (0, -1, 1))


def _request(method: str = "GET", **headers: str) -> Request:
    raw = [
        (name.replace("_", "-").lower().encode(), value.encode()) for name, value in headers.items()
    ]
    return Request({"type": "http", "method": method, "headers": raw, "query_string": b""})


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", {}, None),
        # If-None-Match: weak comparison, any listed tag or *.
        ("GET", {"If_None_Match": ETAG}, 304),
        ("HEAD", {"If_None_Match": f'"x", W/{ETAG}'}, 304),
        ("GET", {"If_None_Match": "*"}, 304),
        ("GET", {"If_None_Match": '"x"'}, None),
        ("POST", {"If_None_Match": ETAG}, 412),  # not a read: fails instead
        # If-Match: strong comparison; a weak tag never matches.
        ("GET", {"If_Match": ETAG}, None),
        ("GET", {"If_Match": f'"x", {ETAG}'}, None),
        ("GET", {"If_Match": "*"}, None),
        ("GET", {"If_Match": f"W/{ETAG}"}, 412),
        ("GET", {"If_Match": '"x"'}, 412),
        ("GET", {"If_Match": '"x"', "If_None_Match": ETAG}, 412),  # If-Match first
        # Dates, when the answer has a Last-Modified.
        ("GET", {"If_Modified_Since": AT}, 304),
        ("HEAD", {"If_Modified_Since": AFTER}, 304),
        ("GET", {"If_Modified_Since": BEFORE}, None),
        ("POST", {"If_Modified_Since": AT}, None),  # for reads only
        ("GET", {"If_Modified_Since": "yesterday"}, None),  # not a date: ignored
        ("GET", {"If_Modified_Since": AT, "If_None_Match": '"x"'}, None),  # the tag decides
        ("GET", {"If_Modified_Since": BEFORE, "If_None_Match": ETAG}, 304),
        ("GET", {"If_Unmodified_Since": BEFORE}, 412),
        ("GET", {"If_Unmodified_Since": AT}, None),
        ("GET", {"If_Unmodified_Since": BEFORE, "If_Match": ETAG}, None),  # the tag decides
    ],
)
def test_preconditions(method: str, headers: dict[str, str], expected: int | None) -> None:
    assert precondition(_request(method, **headers), ETAG, MODIFIED) == expected


def test_dates_are_ignored_without_last_modified() -> None:
    for headers in ({"If_Modified_Since": AFTER}, {"If_Unmodified_Since": BEFORE}):
        assert precondition(_request(**headers), ETAG, None) is None


def test_last_modified_is_given_once_its_second_is_over() -> None:
    assert last_modified(MODIFIED + 0.25, now=MODIFIED + 0.9) is None
    assert last_modified(MODIFIED + 0.25, now=MODIFIED + 1.0) == MODIFIED
    assert last_modified(None, now=MODIFIED + 5) is None
    assert http_date(MODIFIED) == "Tue, 02 Jan 2024 03:04:05 GMT"
