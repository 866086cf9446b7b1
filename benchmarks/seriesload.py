"""A whole series' pixel answers in Chromium's network events, for ``viewer.py``.

A slice is fetched when one answer carried its whole pixel body: a ``200``,
or the ``206`` whose ``Content-Range`` ends at the body's last byte (the
final request of progressive loading, ``Range: bytes=N-``).  Whether native
(``…/frames/{n}``) or HTJ2K (``…/htj2k/{n}``), the slice is the instance's
frame; the series is loaded when every slice is fetched and no pixel request
is still open, and it ended with the last pixel answer (so, with progressive
loading, the final request of each slice shown is in it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import CDPSession
from progressive import Wire

NATIVE, HTJ2K = "/frames/", "/htj2k/"
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass
class SeriesWire(Wire):
    """:class:`Wire` with each answer's status and range, and the failed requests."""

    status: dict[str, int] = field(default_factory=dict)
    content_range: dict[str, str] = field(default_factory=dict)
    content_encoding: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    #: Bytes of each finished answer as they came over the wire, headers included.
    wire_bytes: dict[str, int] = field(default_factory=dict)

    def watch(self, session: CDPSession) -> None:
        session.on("Network.responseReceived", self._response)
        session.on("Network.loadingFailed", self._failed)
        session.on("Network.loadingFinished", self._size)
        super().watch(session)

    def _size(self, event: dict[str, Any]) -> None:
        self.wire_bytes[event["requestId"]] = int(event["encodedDataLength"])

    def _response(self, event: dict[str, Any]) -> None:
        response = event["response"]
        self.status[event["requestId"]] = response["status"]
        headers = {name.lower(): value for name, value in response["headers"].items()}
        self.content_range[event["requestId"]] = headers.get("content-range", "")
        self.content_encoding[event["requestId"]] = headers.get("content-encoding", "")

    def _failed(self, event: dict[str, Any]) -> None:
        self.failed[event["requestId"]] = event.get("errorText", "")

    def whole(self, rid: str) -> bool:
        """Whether the answer to ``rid`` carried its body to the last byte."""
        status = self.status.get(rid)
        if status == 200:
            return True
        found = CONTENT_RANGE.fullmatch(self.content_range.get(rid, ""))
        return status == 206 and found is not None and int(found[2]) + 1 == int(found[3])


@dataclass(frozen=True)
class SeriesLoad:
    """The series' pixel answers from one origin, so far."""

    fetched: dict[str, str]  # slice (its …/frames/{n} URL) -> the path that carried it
    first_request: float  # wall clock of the first pixel request
    last_answer: float  # wall clock of the last pixel answer
    #: Seconds the finished pixel requests were open, summed: over the time from
    #: the first request to the last answer, how many were open on average.
    open_seconds: float
    open_requests: int
    requests: int
    pixel_bytes: int  # of the finished answers, as they came over the wire
    failed: list[str]  # URLs of failed requests to the origin (any path)
    encodings: frozenset[str]  # the pixel answers' Content-Encoding ("": none)

    def mean_open(self) -> float:
        """Pixel requests open on average from the first request to the last answer."""
        return self.open_seconds / (self.last_answer - self.first_request)

    def mbit_s(self) -> float:
        """Pixel bytes on the wire per second, first request to last answer (Mbit/s)."""
        return self.pixel_bytes * 8 / 1e6 / (self.last_answer - self.first_request)

    def slices(self, path: str) -> int:
        return sum(1 for carried in self.fetched.values() if carried == path)


def series_load(wire: SeriesWire, origin: str) -> SeriesLoad:
    """The pixel answers of ``origin`` recorded in ``wire``."""
    fetched: dict[str, str] = {}
    first, last, open_seconds = float("inf"), 0.0, 0.0
    requests = open_requests = 0
    pixel_ids: set[str] = set()
    for rid, url in list(wire.urls.items()):
        path = _pixel_path(url) if url.startswith(origin) else None
        if path is None:
            continue
        requests += 1
        pixel_ids.add(rid)
        first = min(first, wire.wall(wire.sent[rid]))
        finished = wire.finished.get(rid)
        if finished is None:
            open_requests += rid not in wire.failed
            continue
        last = max(last, wire.wall(finished))
        open_seconds += finished - wire.sent[rid]
        if wire.whole(rid):
            fetched[url.split("?")[0].replace(path, NATIVE)] = path
    return SeriesLoad(
        fetched=fetched,
        first_request=first,
        last_answer=last,
        open_seconds=open_seconds,
        open_requests=open_requests,
        requests=requests,
        pixel_bytes=sum(wire.wire_bytes.get(rid, 0) for rid in pixel_ids),
        failed=[wire.urls.get(rid, rid) for rid in list(wire.failed) if rid in wire.urls],
        encodings=frozenset(wire.content_encoding.get(rid, "") for rid in pixel_ids),
    )


def _pixel_path(url: str) -> str | None:
    return next((path for path in (HTJ2K, NATIVE) if path in url), None)
