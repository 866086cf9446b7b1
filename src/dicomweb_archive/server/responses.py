"""HTTP answers made of stored or computed bytes, with ranges and validators.

``RangeResponse`` answers a :class:`Slice` of a file (streamed in chunks) or
bytes in memory with single byte ranges (206 with a numeric total, an end past
the end clipped, :class:`RangeNotSatisfiableError` beyond it), ``HEAD``, a
strong ``ETag``, the preconditions of :mod:`.conditions` (304, 412) and
``If-Range``: every viewer access pattern of client-contract §4.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

import anyio
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from dicomweb_archive.errors import RangeNotSatisfiableError
from dicomweb_archive.numerals import parse_unsigned
from dicomweb_archive.server.conditions import NOT_MODIFIED, precondition
from dicomweb_archive.server.pathsend import send_path, sends_paths
from dicomweb_archive.store.slices import Slice
from dicomweb_archive.types import ByteRange

CHUNK_SIZE = 256 * 1024
#: Slices up to this size are read at once: on the event loop when they are in
#: the page cache (a fraction of a millisecond, less than a hand-off to a worker
#: thread), else by a worker thread; larger ones are streamed in chunks read by
#: worker threads.
SMALL = 1024 * 1024
#: One byte-range-spec or suffix-range (several ranges are answered whole).
_RANGE_SPEC = re.compile(r"\s*([0-9]*)-([0-9]*)\s*")


def entity_tag(*parts: str) -> str:
    """A strong validator derived from what identifies a representation."""
    return '"' + hashlib.blake2b("|".join(parts).encode(), digest_size=12).hexdigest() + '"'


def slice_tag(source: Slice) -> str:
    """The validator of stored bytes: changes whenever their file does."""
    return entity_tag(source.version, str(source.offset), str(source.length))


def representation_tag(validator: str, media_type: str, content_encoding: str = "") -> str:
    """The ``ETag`` of one representation of the bytes ``validator`` identifies.

    A strong validator names one body (RFC 9110 8.8.1): the same stored bytes
    sent as a multipart body or as a bare payload, gzipped or not, in another
    transfer syntax or cut to another resolution are other bodies, and an
    ``If-Range`` must never join the slice of one to another.  So the media
    type (with its ``type`` and ``transfer-syntax`` parameters) and the content
    coding are part of every tag.
    """
    return entity_tag(validator, media_type, content_encoding)


class Streamed(Protocol):
    """A body of known length sent a chunk at a time (see :mod:`.joined`)."""

    @property
    def length(self) -> int: ...

    def tag(self) -> str: ...

    def chunks(self, start: int, end: int) -> Iterator[bytes]: ...


def byte_range(header: str, total: int) -> ByteRange | None:
    """The range of ``total`` bytes a ``Range`` header asks for (RFC 9110 14.1.2).

    None means "ignore it and send everything" (other units, several ranges,
    nonsense, a last position before the first).  A range starting at or beyond
    ``total``, an empty suffix or any range of nothing raises
    :class:`~dicomweb_archive.errors.RangeNotSatisfiableError`; an end past the
    end is clipped.
    """
    unit, _, spec = header.partition("=")
    match = _RANGE_SPEC.fullmatch(spec)
    if unit.strip().lower() != "bytes" or match is None:
        return None
    first, last = match.groups()
    try:
        start = parse_unsigned(first) if first else None
        stop = parse_unsigned(last) if last else None
    except ValueError:  # more digits than any size
        return None
    if start is None:
        if stop is None:
            return None
        if stop == 0 or total == 0:
            raise RangeNotSatisfiableError(f"{header} selects no byte of {total}", total=total)
        return ByteRange(max(total - stop, 0), total)
    end = stop + 1 if stop is not None else total
    if end <= start < total:
        return None
    if start >= total:
        raise RangeNotSatisfiableError(f"{header} starts beyond {total} bytes", total=total)
    return ByteRange(start, min(end, total))


class RangeResponse(Response):
    """Bytes with ranges, HEAD and conditional requests."""

    def __init__(
        self,
        request: Request,
        source: Slice | bytes | bytearray | Streamed,
        media_type: str,
        *,
        headers: Mapping[str, str] | None = None,
        etag: str | None = None,
    ) -> None:
        """``etag``: what identifies the bytes; the media type and coding are added."""
        if etag is None:
            if isinstance(source, (bytes, bytearray)):
                etag = '"' + hashlib.blake2b(source, digest_size=12).hexdigest() + '"'
            elif isinstance(source, Slice):
                etag = slice_tag(source)
            else:
                etag = source.tag()
        etag = representation_tag(etag, media_type, (headers or {}).get("Content-Encoding", ""))
        self.source = source
        self.media_type = media_type
        self.background = None
        merged = {"ETag": etag, "Accept-Ranges": "bytes", **(headers or {})}
        total = len(source) if isinstance(source, (bytes, bytearray)) else source.length
        self.status_code = precondition(request, etag) or 200
        self.start, self.end = 0, total
        ranged = "range" in request.headers and request.headers.get("if-range", etag) == etag
        if self.status_code == 200 and ranged:
            wanted = byte_range(request.headers["range"], total)
            if wanted is not None:
                self.status_code = 206
                self.start, self.end = wanted
                merged["Content-Range"] = f"bytes {self.start}-{self.end - 1}/{total}"
        self.send_body = request.method != "HEAD" and self.status_code in (200, 206)
        self.init_headers(merged)
        if self.status_code == NOT_MODIFIED:
            self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-type"]
        elif self.status_code not in (200, 206):  # 412: no body
            self.headers["content-length"] = "0"
        else:
            self.headers["content-length"] = str(self.end - self.start)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        if not self.send_body or self.end == self.start:
            await send({"type": "http.response.body", "body": b""})
            return
        if not isinstance(self.source, (Slice, bytes, bytearray)):
            chunks = iterate_in_threadpool(self.source.chunks(self.start, self.end))
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if not isinstance(self.source, Slice):
            whole = self.end - self.start == len(self.source)
            held = self.source if whole else self.source[self.start : self.end]
            await send({"type": "http.response.body", "body": held})
            return
        part = self.source.part(self.start, self.end)
        opened = part.whole_file
        if opened is not None and sends_paths(scope):
            await send_path(opened, scope, send)
            return
        if part.length <= SMALL:
            body: bytes | bytearray | None = part.read_cached()
            if body is None:  # the disk would be waited for: not on the event loop
                body = await anyio.to_thread.run_sync(part.read)
            await send({"type": "http.response.body", "body": body})
            return
        # The opened file, never its path again: a file replaced meanwhile (a
        # STOW-RS of the same instance) does not change an answer under way.
        position, end = part.offset, part.offset + part.length
        while position < end:
            length = min(CHUNK_SIZE, end - position)
            chunk = await anyio.to_thread.run_sync(part.file.pread, position, length)
            position += length
            more = position < end
            await send({"type": "http.response.body", "body": chunk, "more_body": more})


class ThreadedResponse(Response):
    """An answer made by ``make`` in a worker thread when it is sent.

    For the answers that cost CPU or much IO (decoding, cutting codestreams,
    joining many frames); endpoints stay ``async`` so that the usual request,
    stored bytes sent as they are, never waits for a thread.
    """

    def __init__(self, make: Callable[[], Response]) -> None:
        self.make = make
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await anyio.to_thread.run_sync(self.make)
        await response(scope, receive, send)
