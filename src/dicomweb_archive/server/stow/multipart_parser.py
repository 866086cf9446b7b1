"""A streaming parser of ``multipart/related`` request bodies (RFC 2046 5.1, RFC 2387).

The parser does no I/O: :meth:`MultipartParser.feed` takes the body chunk by
chunk and returns events (a part's headers, pieces of its payload, its end),
keeping no more than the last chunk and a delimiter's length in memory, however
large the parts are.

Framing follows RFC 2046: the first delimiter may open the body or follow a
preamble; every later one is a line break, ``--`` and the boundary, then either
``--`` (the close delimiter) or optional white space and a line break.  The line
break is taken from the first delimiter line: CRLF as the RFC says, or a bare LF
as some libraries write (Python's ``email`` package).  The boundary string
followed by anything else is payload, not a delimiter.  Whatever follows the
close delimiter (the epilogue) is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from dicomweb_archive.errors import MalformedMultipartError

#: Most bytes the header block of one part may take.
MAX_HEADER_BYTES = 16 * 1024
#: Most white space allowed between a delimiter and its line break.
_MAX_PADDING = 256
#: Longest boundary accepted; RFC 2046 allows 70 characters, some senders use more.
_MAX_BOUNDARY = 200
_WHITE_SPACE = b" \t"


@dataclass(frozen=True)
class PartStart:
    """A part begins; its header names are lower case."""

    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PartData:
    """The next bytes of the current part's payload."""

    data: bytes


@dataclass(frozen=True)
class PartEnd:
    """The current part is complete."""


Event = PartStart | PartData | PartEnd


class _State(Enum):
    PREAMBLE = 1
    HEADERS = 2
    BODY = 3
    EPILOGUE = 4


_Delimiter = Literal["open", "close", "payload", "more"]


def check_boundary(boundary: str) -> None:
    """Raise :class:`MalformedMultipartError` unless ``boundary`` can frame a body.

    RFC 2046 limits boundaries to 70 characters of a small set; any printable
    ASCII is accepted here, up to a generous length, as long as it does not end
    in white space (which would be taken for transport padding).
    """
    if not 1 <= len(boundary) <= _MAX_BOUNDARY:
        raise MalformedMultipartError(f"the boundary must be 1 to {_MAX_BOUNDARY} characters long")
    if any(not " " <= c <= "~" for c in boundary) or boundary.endswith(" "):
        raise MalformedMultipartError(f"{boundary!r} is not a valid multipart boundary")


def _parse_headers(block: bytes, newline: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    name = ""
    for line in block.decode("latin-1").split(newline.decode("ascii")):
        if line[:1] in (" ", "\t") and name:  # an obsolete folded continuation
            headers[name] = f"{headers[name]} {line.strip()}".strip()
            continue
        key, colon, value = line.partition(":")
        name = key.strip().lower()
        if not colon or not name or key != key.rstrip():
            raise MalformedMultipartError(f"part header line {line[:80]!r} is not 'Name: value'")
        headers[name] = f"{headers[name]}, {value.strip()}" if name in headers else value.strip()
    return headers


class MultipartParser:
    """Turns a ``multipart/related`` body with ``boundary`` into events.

    >>> parser = MultipartParser("b")
    >>> parser.feed(b"--b\\r\\nContent-Type: application/dicom\\r\\n\\r\\nDICM\\r\\n--b--")
    [PartStart(headers={'content-type': 'application/dicom'}), PartData(data=b'DICM'), PartEnd()]
    >>> parser.close()
    """

    def __init__(self, boundary: str, *, max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        check_boundary(boundary)
        self._dash_boundary = b"--" + boundary.encode("ascii")
        self._max_header_bytes = max_header_bytes
        # The start of the body counts as the start of a line for the first delimiter.
        self._buffer = bytearray(b"\n")
        self._state = _State.PREAMBLE
        #: The line break of this body, known from the first delimiter line on.
        self._newline = b""
        #: How many parts have started.
        self.parts = 0

    @property
    def complete(self) -> bool:
        """Whether the close delimiter has been read."""
        return self._state is _State.EPILOGUE

    def feed(self, data: bytes) -> list[Event]:
        """The events that ``data``, the next bytes of the body, completes."""
        if self._state is _State.EPILOGUE:
            return []
        self._buffer += data
        events: list[Event] = []
        step = {
            _State.PREAMBLE: self._preamble,
            _State.HEADERS: self._headers,
            _State.BODY: self._body,
        }
        while self._state in step and step[self._state](events):
            pass
        return events

    def close(self) -> None:
        """Declare the body complete; raises when it ended too early."""
        if self._state is not _State.EPILOGUE:
            where = "in a part" if self.parts else "before the first delimiter"
            raise MalformedMultipartError(f"the body ends {where}, without a close delimiter")

    # -- states: each returns whether it made progress ----------------------------

    def _delimiter_end(self, start: int) -> tuple[_Delimiter, int]:
        """What the bytes from ``start``, just after ``--boundary``, make of it."""
        buffer = self._buffer
        if buffer[start : start + 2] == b"--":
            return "close", start + 2
        if len(buffer) < start + 2 and bytes(buffer[start:]) in (b"", b"-"):
            return "more", 0
        end = start
        while end < len(buffer) and buffer[end] in _WHITE_SPACE:
            end += 1
            if end - start > _MAX_PADDING:
                return "payload", 0
        rest = bytes(buffer[end : end + 2])
        if self._newline:
            if rest.startswith(self._newline):
                return "open", end + len(self._newline)
            return ("more", 0) if self._newline.startswith(rest) else ("payload", 0)
        if rest == b"\r\n" or rest[:1] == b"\n":
            self._newline = b"\r\n" if rest == b"\r\n" else b"\n"
            return "open", end + len(self._newline)
        return ("more", 0) if rest in (b"", b"\r") else ("payload", 0)

    def _preamble(self, events: list[Event]) -> bool:
        buffer = self._buffer
        found = buffer.find(b"\n" + self._dash_boundary)
        if found < 0:
            # Keep what could be the start of the first delimiter.
            del buffer[: max(0, len(buffer) - len(self._dash_boundary))]
            return False
        kind, end = self._delimiter_end(found + 1 + len(self._dash_boundary))
        if kind == "more":
            del buffer[:found]
            return False
        if kind == "payload":
            del buffer[: found + 1]
            return True
        return self._after_delimiter(kind, end)

    def _headers(self, events: list[Event]) -> bool:
        buffer, newline = self._buffer, self._newline
        if buffer.startswith(newline):
            headers: dict[str, str] = {}
            del buffer[: len(newline)]
        else:
            end = buffer.find(newline + newline)
            if end < 0 or end > self._max_header_bytes:
                if end > self._max_header_bytes or len(buffer) > self._max_header_bytes:
                    raise MalformedMultipartError(
                        f"the headers of part {self.parts + 1} exceed "
                        f"{self._max_header_bytes} bytes"
                    )
                return False
            headers = _parse_headers(bytes(buffer[:end]), newline)
            del buffer[: end + 2 * len(newline)]
        self.parts += 1
        events.append(PartStart(headers))
        self._state = _State.BODY
        return True

    def _body(self, events: list[Event]) -> bool:
        buffer = self._buffer
        delimiter = self._newline + self._dash_boundary
        found = buffer.find(delimiter)
        if found < 0:
            # Everything but a possible delimiter start is payload.
            keep = len(delimiter) - 1
            if len(buffer) > keep:
                events.append(PartData(bytes(buffer[: len(buffer) - keep])))
                del buffer[: len(buffer) - keep]
            return False
        kind, end = self._delimiter_end(found + len(delimiter))
        if kind == "payload":
            events.append(PartData(bytes(buffer[: found + 1])))
            del buffer[: found + 1]
            return True
        if found:
            events.append(PartData(bytes(buffer[:found])))
        if kind == "more":
            del buffer[:found]
            return False
        events.append(PartEnd())
        return self._after_delimiter(kind, end)

    def _after_delimiter(self, kind: _Delimiter, end: int) -> bool:
        """Past a delimiter ending at ``end``: the close-delimiter, or a part's headers next."""
        if kind == "close":
            self._state = _State.EPILOGUE
            self._buffer.clear()
            return False
        del self._buffer[:end]
        self._state = _State.HEADERS
        return True
