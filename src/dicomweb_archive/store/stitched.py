"""Gzip documents stitched from chunks compressed one by one, kept between writes.

A series' ``metadata.gz`` holds every instance of the series: compressed whole,
a refresh after one new instance costs as much as the series.  Here a document
is a sequence of chunks (groups of fragments: an instance's JSON, a separator)
and each chunk is raw-deflated on its own, with the 32 KiB of the document
before it as its dictionary (instances resemble their neighbours: the ratio
stays close to whole-document compression), and ended by a sync flush, so the
chunks concatenate into one deflate stream: the file is one standard
single-member gzip.  The CRC-32 of the document after each chunk is kept
too: a write computes it again from the first chunk that changed on.

A :class:`Stitcher` keeps the last chunks of each document it wrote: the next
write of the document deflates only chunks that are new, or whose preceding
32 KiB changed; the rest is copied.  Chunks deflated in a row go through one
compressor, sync-flushed after each: zlib then finds the same matches in the
bytes before as in a dictionary of them, and writes the same bytes, without
taking 32 KiB of dictionary again per chunk (a third of the work for a
document written whole); checked once per process (:func:`_streams_alike`),
else each chunk gets a compressor of its own.  The bytes depend on the chunks alone
(each is compressed from its content and the exact bytes before it), never on
what was kept: a process that starts afresh writes the same file.

Callers choose chunk boundaries from the content (:func:`chunked`): an
inserted instance changes its own chunk, not the boundaries after it.
"""

from __future__ import annotations

import functools
import random
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: How far back deflate looks: a chunk's dictionary is this much of what precedes it.
WINDOW = 32768
#: The compression level (that of :func:`~dicomweb_archive.store.base.gzip_bytes`).
LEVEL = 6
#: Bytes of deflated chunks kept at most, over all documents.
LIMIT = 64 * 2**20
#: Chunks hold about this many bytes of the document (smaller ones compress worse).
CHUNK = 16384
#: A gzip header: deflate, no name, no time, unknown system.
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
#: An empty final block (fixed Huffman codes): ends the deflate stream.
_END = b"\x03\x00"


@dataclass(frozen=True, eq=False)
class Chunk:
    """One chunk of a document: its fragments, deflated after what preceded it."""

    fragments: tuple[bytes, ...]
    size: int
    deflated: bytes


def _packer(window: bytes) -> zlib._Compress:
    """A raw deflate compressor that has seen ``window`` (the bytes before)."""
    if window:
        return zlib.compressobj(LEVEL, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, window)
    return zlib.compressobj(LEVEL, zlib.DEFLATED, -15, 8)


def _deflate(fragments: tuple[bytes, ...], packer: zlib._Compress) -> Chunk:
    data = b"".join(fragments)
    deflated = packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH)
    return Chunk(fragments, len(data), deflated)


@functools.cache
def _streams_alike() -> bool:
    """Whether this zlib deflates chunks in a row, sync-flushed, as it deflates
    each with the bytes before it as dictionary (zlib's own deflate does)."""
    # Matches near and as far back as deflate looks, across chunk boundaries.
    chance = random.Random(6)
    near, far = chance.randbytes(1500).hex().encode() * 3, chance.randbytes(7000).hex().encode()
    text = far + near + far + near[:5000] + far
    chunks = [(text[start : start + 12000],) for start in range(0, len(text), 12000)]
    packer = _packer(b"")
    streamed = [_deflate(fragments, packer).deflated for fragments in chunks]
    done: list[Chunk] = []
    for fragments in chunks:
        done.append(_deflate(fragments, _packer(_window(done))))
    return streamed == [chunk.deflated for chunk in done]


def _window(done: list[Chunk]) -> bytes:
    """The last :data:`WINDOW` bytes of the chunks ``done``."""
    parts: list[bytes] = []
    size = 0
    for chunk in reversed(done):
        for fragment in reversed(chunk.fragments):
            parts.append(fragment)
            size += len(fragment)
            if size >= WINDOW:
                return b"".join(reversed(parts))[-WINDOW:]
    return b"".join(reversed(parts))


def stitch(kept: list[Chunk], chunks: list[tuple[bytes, ...]]) -> list[Chunk]:
    """The deflated ``chunks``, copied from ``kept`` where the same chunk follows
    the same :data:`WINDOW` bytes (or the same start of the document)."""
    where = {chunk.fragments: n for n, chunk in enumerate(kept)}
    done: list[Chunk] = []
    # The bytes before the current chunk that equal those before its kept copy.
    same, from_start, previous = 0, True, -1
    # The compressor of the chunks deflated in a row up to the current one.
    packer: zlib._Compress | None = None
    for fragments in chunks:
        found = where.get(fragments)
        aligned = found is not None and found == previous + 1
        if found is not None and aligned and (from_start or same >= WINDOW):
            chunk, packer = kept[found], None
        else:
            if packer is None or not _streams_alike():
                packer = _packer(_window(done))
            chunk = _deflate(fragments, packer)
        done.append(chunk)
        if aligned:
            same += chunk.size
        else:
            same, from_start = (chunk.size if found is not None else 0), False
        previous = found if found is not None else -2
    return done


def crcs(chunks: list[Chunk], kept: Sequence[Chunk] = (), sums: Sequence[int] = ()) -> list[int]:
    """The CRC-32 of the document up to the end of each of ``chunks``: those
    of ``kept`` (``sums``) reused while the chunks are the same from the start."""
    same = 0
    for chunk, before in zip(chunks, kept, strict=False):
        if chunk is not before:
            break
        same += 1
    found = list(sums[:same])
    crc = found[-1] if found else 0
    for chunk in chunks[same:]:
        # zlib's CRC over the bytes again: several times faster than combining
        # each chunk's CRC with its length's shift in Python.
        for fragment in chunk.fragments:
            crc = zlib.crc32(fragment, crc)
        found.append(crc)
    return found


def gzip_member(chunks: list[Chunk], crc: int | None = None) -> bytes:
    """The gzip file of deflated ``chunks`` (whose CRC-32 is ``crc``, when
    known): header, the chunks, an end, the trailer."""
    if crc is None:
        crc = crcs(chunks)[-1] if chunks else 0
    size = sum(chunk.size for chunk in chunks)
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return b"".join([_HEADER, *(chunk.deflated for chunk in chunks), _END, trailer])


def ends_chunk(mark: int, size: int) -> bool:
    """Whether a chunk ends after a unit of ``size`` bytes whose mark (a 32-bit
    number standing for it, such as a CRC of its instance's UID) is ``mark``.

    When the mark falls below the unit's share of :data:`CHUNK`: chunks hold
    about that many bytes, and their boundaries follow the content, not
    positions.
    """
    return mark * CHUNK < size << 32


#: Units cut into chunks, to be joined with those before and after: the
#: fragments up to the first chunk's end (all of them when none ends), the
#: chunks ended after it, and the fragments after the last end (None: no end).
Piece = tuple[tuple[bytes, ...], tuple[tuple[bytes, ...], ...], tuple[bytes, ...] | None]


def piece(units: Iterable[tuple[bool, tuple[bytes, ...]]]) -> Piece:
    """The piece of units, each whether it ends a chunk (:func:`ends_chunk`) and its fragments."""
    chunks: list[tuple[bytes, ...]] = []
    current: list[bytes] = []
    for ends, fragments in units:
        current.extend(fragments)
        if ends:
            chunks.append(tuple(current))
            current = []
    if not chunks:
        return tuple(current), (), None
    return chunks[0], tuple(chunks[1:]), tuple(current)


def joined(pieces: Iterable[Piece]) -> list[tuple[bytes, ...]]:
    """The chunks of pieces in a row: as :func:`piece` cuts their units in a row."""
    chunks: list[tuple[bytes, ...]] = []
    current: list[bytes] = []
    for head, middle, tail in pieces:
        current.extend(head)
        if tail is not None:
            chunks.append(tuple(current))
            chunks.extend(middle)
            current = list(tail)
    if current:
        chunks.append(tuple(current))
    return chunks


def chunked(units: Iterable[tuple[bool, tuple[bytes, ...]]]) -> list[tuple[bytes, ...]]:
    """Chunks of units, each whether it ends a chunk (:func:`ends_chunk`) and its fragments."""
    return joined([piece(units)])


class Stitcher:
    """The chunks last written of each document, by name; see the module.

    Least recently written documents go first once the kept chunks hold
    :data:`LIMIT` deflated bytes.
    """

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        #: Each document's deflated size, chunks and CRC-32s after each.
        self._kept: OrderedDict[str, tuple[int, list[Chunk], list[int]]] = OrderedDict()
        self._size = 0
        self._guard = threading.Lock()

    def gzip(self, name: str, chunks: list[tuple[bytes, ...]]) -> bytes:
        """The document ``name`` made of ``chunks``, as one gzip file."""
        with self._guard:
            size, kept, sums = self._kept.pop(name, (0, [], []))
            self._size -= size
        done = stitch(kept, chunks)
        sums = crcs(done, kept, sums)
        size = sum(len(chunk.deflated) for chunk in done)
        with self._guard:
            self._kept[name] = (size, done, sums)
            self._size += size
            while self._size > self.limit and self._kept:
                _, (dropped, _, _) = self._kept.popitem(last=False)
                self._size -= dropped
        return gzip_member(done, sums[-1] if sums else 0)
