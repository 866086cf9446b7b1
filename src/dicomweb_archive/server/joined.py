"""A response body joined from pieces and sent without being held: several stored frames.

A multipart answer of several stored frames is, byte for byte, their stored
single-part bodies one after the other, each closing delimiter but the last
turned into the CRLF before the next part's opening one.  Its length and
validator are known from the files' sizes and versions alone, so it has a
``Content-Length``, an ``ETag`` and byte ranges like one stored file, while
only one chunk of it is ever in memory.

The files are measured before the answer starts and opened one at a time as
it is sent (an answer holds one open file, however many frames it lists); a
file replaced in between (a STOW-RS of the same instance) no longer matches
its measure, and the connection is closed instead of sending other bytes
than those announced.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dicomweb_archive.model import multipart
from dicomweb_archive.server.responses import CHUNK_SIZE, entity_tag
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.slices import Slice


class ChangedWhileSent(OSError):
    """A stored file was replaced between its measure and its turn to be sent."""


@dataclass(frozen=True)
class Measured:
    """A stored file's bytes ``[start, stop)``, by archive path, size and version."""

    relative: str
    start: int
    stop: int
    version: str

    @classmethod
    def of(cls, relative: str, stored: Slice, start: int = 0, cut: int = 0) -> Measured:
        """``stored`` (located at ``relative``) without its last ``cut`` bytes."""
        return cls(
            relative, stored.offset + start, stored.offset + stored.length - cut, stored.version
        )

    @property
    def length(self) -> int:
        return self.stop - self.start

    def open(self, reader: Archive) -> Slice:
        stored = reader.locate(self.relative)
        if stored.version != self.version:
            raise ChangedWhileSent(f"{self.relative} changed while it was sent")
        return Slice(stored.file, self.start, self.length)


Piece = bytes | Measured


class Joined:
    """Pieces sent one after the other, read a chunk at a time."""

    def __init__(self, reader: Archive, pieces: list[Piece]) -> None:
        self.reader = reader
        self.pieces = pieces
        self.length = sum(len(p) if isinstance(p, bytes) else p.length for p in pieces)

    @classmethod
    def stored_frames(cls, reader: Archive, frames: list[Measured]) -> Joined:
        """The multipart body of several stored frames (see the module docstring)."""
        pieces: list[Piece] = []
        trailer = len(multipart.TRAILER)
        for frame in frames[:-1]:
            pieces += [
                Measured(frame.relative, frame.start, frame.stop - trailer, frame.version),
                b"\r\n",
            ]
        pieces.append(frames[-1])
        return cls(reader, pieces)

    @classmethod
    def bare_frames(cls, reader: Archive, frames: list[Measured], content_type: str) -> Joined:
        """The multipart body of frames stored bare (``--frames raw``), parts of one type."""
        header = multipart.header(content_type)
        pieces: list[Piece] = [header]
        for frame in frames[:-1]:
            pieces += [frame, b"\r\n" + header]
        pieces += [frames[-1], multipart.TRAILER]
        return cls(reader, pieces)

    def tag(self) -> str:
        """What identifies the bytes: changes whenever a piece does."""
        parts = [
            p.hex() if isinstance(p, bytes) else f"{p.relative}:{p.version}:{p.start}:{p.stop}"
            for p in self.pieces
        ]
        return entity_tag(*parts)

    def chunks(self, start: int, end: int) -> Iterator[bytes]:
        """The bytes ``[start, end)`` of the body, at most :data:`CHUNK_SIZE` at a time."""
        position = 0
        for piece in self.pieces:
            size = len(piece) if isinstance(piece, bytes) else piece.length
            low, high = max(start - position, 0), min(end - position, size)
            position += size
            if low >= high:
                continue
            if isinstance(piece, bytes):
                yield piece[low:high]
                continue
            opened = piece.open(self.reader)
            while low < high:
                length = min(CHUNK_SIZE, high - low)
                yield opened.file.pread(opened.offset + low, length)
                low += length
