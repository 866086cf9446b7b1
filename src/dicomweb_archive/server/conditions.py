"""Conditional requests (RFC 9110 13): what the validators of an answer call for.

Every answer with an ``ETag`` (stored files, documents, generated retrieves)
evaluates the request's preconditions here, in the RFC's order (13.2.2):
``If-Match`` (strong comparison), else ``If-Unmodified-Since``, fails with
412; then ``If-None-Match`` (weak comparison), else ``If-Modified-Since``,
answers 304 to a ``GET`` or ``HEAD``.  The dates are looked at only when the
answer has a ``Last-Modified`` and the request no entity-tag condition of the
same kind.  ``If-Range`` is the range code's (:mod:`.responses`).

A list header sent on several field lines is one list (RFC 9110 5.3); a date
header must be one date, in any of the three HTTP-date formats (5.6.7).
"""

from __future__ import annotations

import datetime
import email.utils
import math
import re
import time
from typing import Final

from starlette.requests import Request

NOT_MODIFIED: Final = 304
PRECONDITION_FAILED: Final = 412
#: The asctime format of an HTTP date (``Sun Nov  6 08:49:37 1994``), which names no
#: zone: it is GMT, like the other two.
_ASCTIME = re.compile(r"[A-Za-z]{3} [A-Za-z]{3} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}")


def _field(request: Request, name: str) -> str | None:
    """A list header's value, its field lines joined (RFC 9110 5.3); None when absent."""
    lines = request.headers.getlist(name)
    return ", ".join(lines) if lines else None


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def not_modified(request: Request, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (or ``*``), weakly compared."""
    header = _field(request, "if-none-match")
    if not header:
        return False
    tags = [tag.removeprefix("W/") for tag in _tags(header)]
    return "*" in tags or etag in tags


def _matches_strongly(header: str, etag: str) -> bool:
    """Whether an ``If-Match`` value names ``etag`` (or is ``*``); weak tags never match."""
    tags = _tags(header)
    return "*" in tags or etag in tags


def _date(request: Request, name: str) -> float | None:
    """A date header's seconds since the epoch; None for none, an invalid one or
    several (RFC 9110 13.1.3, 13.1.4: ignored)."""
    lines = request.headers.getlist(name)
    if len(lines) != 1 or not lines[0]:
        return None
    header = lines[0].strip()
    try:
        parsed = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        if not _ASCTIME.fullmatch(header):
            return None  # "-0000", an unknown zone: not an HTTP date
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def precondition(request: Request, etag: str, last_modified: int | None = None) -> int | None:
    """The status the request's preconditions answer with (304, 412), or None: go on.

    ``last_modified`` is the answer's ``Last-Modified`` in whole seconds since
    the epoch, None when it has none.
    """
    if_match = _field(request, "if-match")
    if if_match is not None:
        if not _matches_strongly(if_match, etag):
            return PRECONDITION_FAILED
    elif last_modified is not None:
        unmodified_since = _date(request, "if-unmodified-since")
        if unmodified_since is not None and last_modified > unmodified_since:
            return PRECONDITION_FAILED
    reading = request.method in ("GET", "HEAD")
    if "if-none-match" in request.headers:
        if not_modified(request, etag):
            return NOT_MODIFIED if reading else PRECONDITION_FAILED
    elif reading and last_modified is not None:
        modified_since = _date(request, "if-modified-since")
        if modified_since is not None and last_modified <= modified_since:
            return NOT_MODIFIED
    return None


def last_modified(newest: float | None, now: float | None = None) -> int | None:
    """The ``Last-Modified`` (whole seconds) of an answer whose newest input was
    written at ``newest``; None when unknown or within the current second.

    HTTP dates have whole seconds: an input written later in the second of
    ``newest`` would leave the date unchanged, and an ``If-Modified-Since``
    would then deny the change.  So a date is given only once its second has
    passed (RFC 9110 8.8.2.2); until then the ``ETag`` alone validates.
    """
    if newest is None:
        return None
    second = math.floor(newest)
    return second if second + 1 <= (time.time() if now is None else now) else None


def http_date(seconds: int) -> str:
    """``seconds`` since the epoch as an HTTP date (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
    return email.utils.formatdate(seconds, usegmt=True)
