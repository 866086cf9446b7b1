"""Stored bodies as the services read them: on the event loop only from the page cache.

Every stored frame and bulk data value is a single-part multipart body (its
``Content-Type`` header, the payload, the closing delimiter), so that the
usual answer is the stored bytes untouched.  A service on the event loop reads
with ``inline=True``: a read that would wait for the disk raises
:class:`Uncached`, and the service answers from a worker thread instead.
"""

from __future__ import annotations

from dicomweb_archive.model import multipart
from dicomweb_archive.store.slices import Slice

#: Bytes of a stored body that hold its part header.
HEAD_SIZE = 1024


class Uncached(Exception):
    """A read on the event loop would wait for the disk: answer from a worker thread."""


def read(stored: Slice, inline: bool) -> bytes | bytearray:
    """The bytes of ``stored``; with ``inline``, only from the page cache."""
    if not inline:
        return stored.read()
    data = stored.read_cached()
    if data is None:
        raise Uncached(stored.path)
    return data


def stored_part(
    stored: Slice, head: bytes | bytearray | None = None, inline: bool = False
) -> tuple[str, str, Slice]:
    """Media type, transfer syntax and payload of a stored single-part body.

    ``head`` is the body's start when already read.  A frame of an archive
    made with ``--frames raw`` is its bare payload: media type and syntax come
    back empty, for the caller to take from the instance's description.
    """
    if head is None:
        head = read(stored.part(0, min(stored.length, HEAD_SIZE)), inline)
    content_type = multipart.part_content_type(head)
    if content_type is None:
        return "", "", stored
    end = head.find(b"\r\n\r\n")
    media_type, _, rest = content_type.partition(";")
    syntax = rest.partition("transfer-syntax=")[2].strip()
    payload = stored.part(end + 4, stored.length - len(multipart.TRAILER))
    return media_type.strip(), syntax, payload
