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


def _lines(method: str, lines: list[tuple[str, str]]) -> Request:
    """A request with these header field lines, in this order (a name may repeat)."""
    raw = [(name.lower().encode(), value.encode()) for name, value in lines]
    return Request({"type": "http", "method": method, "headers": raw, "query_string": b""})


def _request(method: str = "GET", **headers: str) -> Request:
    return _lines(method, [(name.replace("_", "-"), value) for name, value in headers.items()])


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


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        # A list sent on several field lines is one list (RFC 9110 5.3).
        ([("If-Match", '"x"'), ("If-Match", ETAG)], None),
        ([("If-Match", ETAG), ("If-Match", '"x"')], None),
        ([("If-Match", '"x"'), ("If-Match", '"y"')], 412),
        ([("If-None-Match", '"x"'), ("If-None-Match", f"W/{ETAG}")], 304),
        ([("If-None-Match", '"x"'), ("If-None-Match", '"y"')], None),
        # A date header of several dates is not a date: ignored (13.1.3, 13.1.4).
        ([("If-Modified-Since", AT), ("If-Modified-Since", AT)], None),
        ([("If-Unmodified-Since", BEFORE), ("If-Unmodified-Since", BEFORE)], None),
    ],
)
def test_a_header_on_several_lines(lines: list[tuple[str, str]], expected: int | None) -> None:
    assert precondition(_lines("GET", lines), ETAG, MODIFIED) == expected


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [
        # The three HTTP-date formats (RFC 9110 5.6.7), GMT all.
        ("If-Modified-Since", "Tue, 02 Jan 2024 03:04:05 GMT", 304),
        ("If-Modified-Since", "Tuesday, 02-Jan-24 03:04:05 GMT", 304),
        ("If-Modified-Since", "Tue Jan  2 03:04:05 2024", 304),
        ("If-Modified-Since", "Tue Jan  2 03:04:04 2024", None),
        ("If-Unmodified-Since", "Tue Jan  2 03:04:04 2024", 412),
        ("If-Unmodified-Since", "Tue Jan  2 03:04:05 2024", None),
        # A time of no zone is no time.
        ("If-Modified-Since", "Tue, 02 Jan 2024 03:04:05 -0000", None),
        ("If-Modified-Since", "Tue, 02 Jan 2024 25:04:05 GMT", None),
        ("If-Modified-Since", "Tue, 02 Jan 99999 03:04:05 GMT", None),
    ],
)
def test_http_date_formats(header: str, value: str, expected: int | None) -> None:
    assert precondition(_lines("GET", [(header, value)]), ETAG, MODIFIED) == expected


def test_dates_are_ignored_without_last_modified() -> None:
    for headers in ({"If_Modified_Since": AFTER}, {"If_Unmodified_Since": BEFORE}):
        assert precondition(_request(**headers), ETAG, None) is None


def test_last_modified_is_given_once_its_second_is_over() -> None:
    assert last_modified(MODIFIED + 0.25, now=MODIFIED + 0.9) is None
    assert last_modified(MODIFIED + 0.25, now=MODIFIED + 1.0) == MODIFIED
    assert last_modified(None, now=MODIFIED + 5) is None
    assert http_date(MODIFIED) == "Tue, 02 Jan 2024 03:04:05 GMT"
