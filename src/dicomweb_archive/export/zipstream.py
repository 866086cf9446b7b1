"""A ZIP file written as a stream of chunks, in constant memory, never seeking.

For ``application/zip`` downloads: each member's bytes go out as they are
produced, so memory holds one chunk, not the file.  The standard library's
``zipfile`` writes the format; given a sink it cannot seek, it follows each
member with a data descriptor (CRC and sizes come after the data).  A member of
unknown size is always given ZIP64 headers, since it might pass the 32-bit
limits; a member whose size is announced gets them only when that size needs
them.  ZIP64 end records are added when the offsets or the number of members
need them.  Members are STORED by default: P10 files of compressed images gain
nothing from deflating, and storing costs no CPU.

The bytes are a function of the members alone: every member is dated
:data:`~dicomweb_archive.store.studyzip.ENTRY_DATE` unless told otherwise,
never by the clock.  Two requests for the same series are the same download,
byte for byte (client-contract §4), whenever each is made: a download can be
resumed or cached, and a de-identified one does not tell when it was made.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from dicomweb_archive.store.studyzip import ENTRY_DATE

#: Pieces smaller than this are gathered before they are yielded.
_GATHER: Final = 64 * 1024

DateTime = tuple[int, int, int, int, int, int]


@dataclass(frozen=True)
class ZipMember:
    """One file of the ZIP: its name, its bytes as chunks, and its size if known."""

    name: str
    chunks: Iterable[bytes]
    size: int | None = None

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> ZipMember:
        return cls(name, (data,), len(data))


class _Sink:
    """A write-only, unseekable file that hands over what was written."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        if data:
            self._pieces.append(data if isinstance(data, bytes) else bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> Iterator[bytes]:
        """What was written since the last call, small pieces gathered."""
        pieces, self._pieces = self._pieces, []
        small: list[bytes] = []
        gathered = 0
        for piece in pieces:
            if len(piece) >= _GATHER:
                if small:
                    yield b"".join(small)
                    small, gathered = [], 0
                yield piece
            else:
                small.append(piece)
                gathered += len(piece)
                if gathered >= _GATHER:
                    yield b"".join(small)
                    small, gathered = [], 0
        if small:
            yield b"".join(small)


def zip_stream(
    members: Iterable[ZipMember],
    *,
    compression: int = zipfile.ZIP_STORED,
    compresslevel: int | None = None,
    date_time: DateTime = ENTRY_DATE,
) -> Iterator[bytes]:
    """The bytes of a ZIP file holding ``members``, chunk by chunk.

    Members are read one at a time, as the stream reaches them.  Names must be
    unique; every member is dated ``date_time`` (MS-DOS time, no zone).
    """
    sink = _Sink()
    seen: set[str] = set()
    # zipfile finds no tell() on the sink and so writes without seeking.
    with zipfile.ZipFile(
        sink,
        "w",
        compression=compression,
        compresslevel=compresslevel,
        allowZip64=True,
    ) as archive:
        for member in members:
            if member.name in seen:
                raise ValueError(f"{member.name!r} appears twice in the ZIP")
            seen.add(member.name)
            info = zipfile.ZipInfo(member.name, date_time=date_time)
            info.compress_type = compression
            info.create_system = 3  # Unix, so the mode below is read
            info.external_attr = 0o100644 << 16
            if member.size is not None:
                info.file_size = member.size
            written = 0
            with archive.open(info, "w", force_zip64=member.size is None) as target:
                yield from sink.take()
                for chunk in member.chunks:
                    target.write(chunk)
                    written += len(chunk)
                    yield from sink.take()
            if member.size is not None and written != member.size:
                raise ValueError(
                    f"{member.name}: {written} bytes were produced, {member.size} announced"
                )
            yield from sink.take()
    yield from sink.take()
