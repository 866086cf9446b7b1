"""A STOW-RS request body, read as it arrives and spooled part by part to files.

Small parts stay in memory (up to 4 MB of each body's parts), larger ones go
to files: memory stays bounded however large the parts; the upload size limit
is enforced while reading.  The body is ``multipart/related;
type="application/dicom"`` (one P10 instance per part) or a single
``application/dicom`` instance.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread
from starlette.requests import Request

from dicomweb_archive.errors import (
    MalformedMultipartError,
    MalformedRequestError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from dicomweb_archive.media import DICOM, MULTIPART_RELATED, parse_media_range
from dicomweb_archive.numerals import parse_unsigned
from dicomweb_archive.server.stow.multipart_parser import (
    MultipartParser,
    PartData,
    PartStart,
    check_boundary,
)

#: Spooled payload is written to disk in pieces of this size, from a thread.
_FLUSH_BYTES = 1024 * 1024
#: Parts of one body kept in memory, never written to a file, up to this many
#: bytes in all: a file made and deleted per instance costs up to a few hundred
#: µs on ext4 without a journal after many deletions, and frees an inode that
#: makes the next file creations nearby dearer still.
_IN_MEMORY_BYTES = 4 * 1024 * 1024


@dataclass
class SpooledPart:
    """One posted instance: in memory (``pending``), or spooled to ``path`` once
    it outgrew :data:`_FLUSH_BYTES` or its body's memory."""

    number: int
    folder: Path
    #: The part's own ``Content-Type`` header, if it has one.
    content_type: str | None
    size: int = 0
    pending: bytearray | None = None
    #: The file holding the part, once there is one.
    path: str | None = None
    handle: BinaryIO | None = None
    #: Whether the whole part is received (closed).
    received: bool = False

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.pending is None:
            self.pending = bytearray()
        self.pending += data
        if len(self.pending) >= _FLUSH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self.pending:
            data, self.pending = self.pending, None
            await anyio.to_thread.run_sync(self._append, data)

    def _append(self, data: bytearray) -> None:
        if self.handle is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, self.path = tempfile.mkstemp(dir=self.folder, prefix="stow-")
            self.handle = os.fdopen(fd, "wb")
        self.handle.write(data)

    async def close(self, *, in_memory: bool = False) -> None:
        """The whole part received: kept in memory when ``in_memory`` and it
        never went to a file, else flushed and its file closed."""
        self.received = True
        if not (in_memory and self.path is None):
            await self.flush()
        if self.handle is not None:
            handle, self.handle = self.handle, None
            await anyio.to_thread.run_sync(handle.close)

    def open(self) -> BinaryIO:
        """The part's bytes, from the start."""
        if self.path is None:
            return io.BytesIO(self.pending or b"")
        return open(self.path, "rb")

    def discard(self) -> None:
        self.pending = None
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def boundary_of(content_type: str | None) -> str | None:
    """The boundary of a multipart body; ``None`` for a single-part instance."""
    if not content_type:
        raise UnsupportedMediaTypeError(
            'a Content-Type is required: multipart/related; type="application/dicom"'
        )
    parsed = parse_media_range(content_type)
    if parsed is None:
        raise UnsupportedMediaTypeError(f"{content_type!r} is not a media type")
    if parsed.media_type == DICOM:
        return None
    part_type = (parsed.part_type or DICOM).partition(";")[0].strip()
    if parsed.media_type != MULTIPART_RELATED or part_type != DICOM:
        what = f'{parsed.media_type}; type="{part_type}"' if parsed.params else parsed.media_type
        raise UnsupportedMediaTypeError(
            f"{what} is not supported; send multipart/related; "
            'type="application/dicom" or a single application/dicom instance'
        )
    boundary = parsed.params.get("boundary")
    if not boundary:
        raise MalformedRequestError("the multipart Content-Type has no boundary")
    try:
        check_boundary(boundary)
    except MalformedMultipartError as exc:
        raise MalformedRequestError(str(exc)) from exc
    return boundary


def too_large(limit: int | None) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the request body exceeds the upload limit of {limit} bytes")


def check_declared_length(request: Request, limit: int | None) -> None:
    """Refuse a body whose declared Content-Length is beyond ``limit``, before reading it."""
    length = request.headers.get("content-length")
    if length is None or limit is None:
        return
    try:
        declared = parse_unsigned(length)
    except ValueError as exc:
        raise MalformedRequestError(f"Content-Length {length!r} is not a number") from exc
    if declared > limit:
        raise too_large(limit)


class Spool:
    """The parts of one body, spooled into files in ``folder``."""

    def __init__(self, folder: Path, max_upload_bytes: int | None) -> None:
        self.folder = folder
        self.max_upload_bytes = max_upload_bytes
        self.parts: list[SpooledPart] = []
        self._in_memory = 0

    def _new_part(self, content_type: str | None) -> SpooledPart:
        part = SpooledPart(len(self.parts) + 1, self.folder, content_type)
        self.parts.append(part)
        return part

    async def _close(self, part: SpooledPart) -> None:
        """The part received: in memory while the body's parts fit in
        :data:`_IN_MEMORY_BYTES`, else in its file."""
        if part.received:
            return
        in_memory = part.path is None and self._in_memory + part.size <= _IN_MEMORY_BYTES
        if in_memory:
            self._in_memory += part.size
        await part.close(in_memory=in_memory)

    def discard(self) -> None:
        for part in self.parts:
            part.discard()

    async def receive(self, request: Request, boundary: str | None) -> list[SpooledPart]:
        """Spool the body's parts (which :meth:`discard` removes)."""
        parser = MultipartParser(boundary) if boundary is not None else None
        current = self._new_part(DICOM) if parser is None else None
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if self.max_upload_bytes is not None and received > self.max_upload_bytes:
                    raise too_large(self.max_upload_bytes)
                if parser is None:
                    assert current is not None
                    await current.write(chunk)
                    continue
                for event in parser.feed(chunk):
                    if isinstance(event, PartStart):
                        current = self._new_part(event.headers.get("content-type"))
                    elif isinstance(event, PartData):
                        assert current is not None
                        await current.write(event.data)
                    else:
                        assert current is not None
                        await self._close(current)
            if parser is not None:
                parser.close()
        except MalformedMultipartError as exc:
            raise MalformedRequestError(f"malformed multipart body: {exc}") from exc
        for part in self.parts:
            await self._close(part)
        if not self.parts:
            raise MalformedRequestError("the multipart body holds no part")
        if parser is None and self.parts[0].size == 0:
            raise MalformedRequestError("the request body is empty")
        return self.parts
