"""The usual frame request, answered before Starlette's middleware and routing.

A viewer asks for hundreds of frames, each one ``GET …/frames/{n}`` of one
stored frame that the answer sends whole.  :class:`UsualFrames` answers that
request itself: a few checks, one open and a head made before; the file goes
by ``http.response.pathsend`` (:mod:`.pathsend`).  It applies when all of this
holds, and hands anything else to the application unchanged:

- ``GET {base}/studies/{st}/series/{se}/instances/{sop}/frames/{n}``, one
  frame, written as the application writes it, no query string;
- no ``Range`` and no ``If-…`` header, at most one ``Accept`` (none asking for
  HTJ2K, whose answer depends on the instance's alternate) and one ``Origin``;
- a server that sends files by path, an archive of local files, the study a
  folder (not packed) whose documents are up to date;
- a frame stored as a single-part body (not ``--frames raw``) whose part
  header is in the page cache;
- a head known for this kind of answer (below).

The head is the application's own: the first request of each kind (the same
``Accept`` and ``Origin``, a frame of the same stored media type and transfer
syntax) goes through the application, and when it answers 200 with the whole
file, its head becomes the head of every frame of that kind, with the frame's
own ``ETag`` and ``Content-Length`` (checked against that first answer).  So
both paths answer the same bytes; ``tests/server/test_fastpath.py`` compares
them.  The access log gets the same line either way.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dicomweb_archive.errors import DicomwebArchiveError
from dicomweb_archive.media import parse_accept
from dicomweb_archive.model.paths import FRAMES, ResourcePath, ResourceType
from dicomweb_archive.server.context import Context
from dicomweb_archive.server.frames import asks_for_htj2k
from dicomweb_archive.server.middleware import AccessLog
from dicomweb_archive.server.pathsend import PATHSEND, send_path, sends_paths
from dicomweb_archive.server.responses import representation_tag, slice_tag
from dicomweb_archive.server.stored import Uncached, stored_part
from dicomweb_archive.store.slices import OpenedFile, Slice, file_version

#: Frames whose part header and validator are kept (all forgotten when full).
MAX_FRAMES: Final = 65_536
#: Kinds of answer whose head is kept (none learned beyond).
MAX_HEADS: Final = 64
_START: Final = "http.response.start"
_ETAG: Final = b"etag"
_LENGTH: Final = b"content-length"
_CONTENT_TYPE: Final = b"content-type"

Headers = list[tuple[bytes, bytes]]


@dataclass
class FrameFile:
    """A frame file as last opened: where it is, its version, its part, its validators."""

    file: str
    study: str
    version: str = ""
    #: What the version is made of (inode, time, size): compared as it is.
    stamp: tuple[int, int, int] = (0, 0, 0)
    #: Media type and transfer syntax of the stored part.
    part: tuple[str, str] = ("", "")
    #: The validator of the whole file (:func:`~.responses.slice_tag`).
    tag: str = ""
    #: The ``ETag`` of each answer's media type.
    etags: dict[str, bytes] = field(default_factory=dict)
    #: The last head a server writing heads itself made for this version: of
    #: which kind, after which first lines, and the head (:mod:`.directframes`).
    written: tuple[FrameHead, bytes, bytes] | None = None
    #: The client and the opening of the access log line last written for it.
    logged: tuple[str | None, str] | None = None

    def seen(self, opened: Slice, info: os.stat_result) -> bool:
        """Whether ``opened`` (of status ``info``) is the version known, learning it
        when not; False when it cannot be answered here."""
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        if stamp != self.stamp:
            try:
                media_type, syntax, _ = stored_part(opened, inline=True)
            except Uncached:
                return False
            self.stamp, self.version = stamp, file_version(info)
            self.part, self.tag = (media_type, syntax), slice_tag(opened)
            self.etags, self.written = {}, None
        return bool(self.part[0])  # a bare frame (--frames raw) is described elsewhere

    def etag(self, media_type: str) -> bytes:
        etag = self.etags.get(media_type)
        if etag is None:
            etag = self.etags[media_type] = representation_tag(self.tag, media_type).encode()
        return etag


@dataclass(frozen=True)
class FrameHead:
    """The head of one kind of answer, with the places of the frame's own values."""

    headers: tuple[tuple[bytes, bytes], ...]
    etag_at: int
    length_at: int
    #: The answer's ``Content-Type`` (part of its ``ETag``).
    media_type: str
    #: Each header as an HTTP/1.1 head writes it (name in lower case), for a
    #: server that writes the head itself (:mod:`.directframes`).
    lines: tuple[bytes, ...]

    @classmethod
    def learned(cls, headers: Headers, frame: FrameFile, size: int) -> FrameHead | None:
        """The head of ``headers`` when they answer ``frame`` (of ``size`` bytes) whole."""
        names = [name for name, _ in headers]
        if names.count(_ETAG) != 1 or names.count(_LENGTH) != 1 or _CONTENT_TYPE not in names:
            return None
        etag_at, length_at = names.index(_ETAG), names.index(_LENGTH)
        media_type = headers[names.index(_CONTENT_TYPE)][1].decode("latin-1")
        if headers[length_at][1] != str(size).encode() or headers[etag_at][1] != frame.etag(
            media_type
        ):
            return None
        lines = tuple(b"%s: %s\r\n" % (name.lower(), value) for name, value in headers)
        return cls(tuple(headers), etag_at, length_at, media_type, lines)

    def of(self, frame: FrameFile, size: int) -> Headers:
        headers = list(self.headers)
        headers[self.etag_at] = (_ETAG, frame.etag(self.media_type))
        headers[self.length_at] = (_LENGTH, str(size).encode())
        return headers

    def written(self, frame: FrameFile, size: int) -> bytes:
        """The header lines of :meth:`of`, as an HTTP/1.1 head writes them."""
        lines = list(self.lines)
        lines[self.etag_at] = b"etag: %s\r\n" % frame.etag(self.media_type)
        lines[self.length_at] = b"content-length: %d\r\n" % size
        return b"".join(lines)


#: What a head is known by: the ``Accept`` and ``Origin`` values, the stored part.
_Kind = tuple[bytes | None, bytes | None, tuple[str, str]]


def asked_in(
    headers: Headers, declined: frozenset[bytes] = frozenset()
) -> tuple[bytes | None, bytes | None] | None:
    """The ``Accept`` and ``Origin`` of request ``headers`` the fast path may answer:
    at most one of each, no ``Range`` nor ``If-…`` nor any of ``declined``; else None."""
    accept = origin = None
    for name, value in headers:
        if name == b"accept":
            if accept is not None:
                return None
            accept = value
        elif name == b"origin":
            if origin is not None:
                return None
            origin = value
        elif name == b"range" or name.startswith(b"if-") or name in declined:
            return None
    return accept, origin


class UsualFrames:
    """ASGI middleware answering the usual frame request itself; see the module."""

    def __init__(self, app: ASGIApp, context: Context, base_path: str) -> None:
        self.app = app
        self.context = context
        self.prefix = base_path.rstrip("/") + "/"
        self.access_log = AccessLog(app)
        self.enabled = context.archive.local_files
        self._frames: dict[str, FrameFile] = {}
        self._heads: dict[_Kind, FrameHead] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        asked = self._asked(scope) if self.enabled else None
        found = self._found(scope["path"], asked) if asked is not None else None
        if found is None:
            await self.app(scope, receive, send)
            return
        kind, frame, opened = found
        head = self._heads.get(kind)
        if head is None:
            await self.app(scope, receive, self._learner(kind, frame, send))
            return
        size, status, sent = opened.size, 0, 0
        try:  # logged as the access log logs the application's answers
            status = 200
            await send({"type": _START, "status": status, "headers": head.of(frame, size)})
            sent = size
            await send_path(opened, scope, send)
        finally:
            if self.access_log.enabled:
                self.access_log.record(scope, status, sent, started)

    def prepared(
        self, path: str, headers: Headers, declined: frozenset[bytes] = frozenset()
    ) -> tuple[FrameFile, FrameHead, OpenedFile] | None:
        """The answer to a ``GET`` of ``path`` with ``headers`` (and no query string, nor
        any header ``declined``) when it is the usual frame request and its head is
        known, for a server writing it itself: the frame, the head (its header lines:
        :meth:`FrameHead.written`) and the opened file, its body; else None (the
        application answers, learning the head).
        """
        asked = asked_in(headers, declined) if self.enabled else None
        found = self._found(path, asked) if asked is not None else None
        if found is None:
            return None
        kind, frame, opened = found
        head = self._heads.get(kind)
        return None if head is None else (frame, head, opened)

    def _asked(self, scope: Scope) -> tuple[bytes | None, bytes | None] | None:
        """The ``Accept`` and ``Origin`` of a request the fast path may answer, else None."""
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["query_string"]
            or scope.get("root_path")
            or not sends_paths(scope)
        ):
            return None
        return asked_in(scope["headers"])

    def _found(
        self, path: str, asked: tuple[bytes | None, bytes | None]
    ) -> tuple[_Kind, FrameFile, OpenedFile] | None:
        """The kind of answer, the frame and its opened file, when the fast path may
        answer ``path`` asked with ``asked``; else None."""
        frame = self._frame(path)
        opened = self._open(frame) if frame is not None else None
        if frame is None or opened is None:
            return None
        return (*asked, frame.part), frame, opened

    def _frame(self, path: str) -> FrameFile | None:
        """The frame file a request path names, when it names exactly one frame."""
        frame = self._frames.get(path)
        if frame is not None or not path.startswith(self.prefix):
            return frame
        text = path[len(self.prefix) :]
        try:
            resource = ResourcePath.from_string(text)
        except DicomwebArchiveError:
            return None
        if (
            resource.type is not ResourceType.FRAMES
            or resource.frames_path != FRAMES
            or resource.suffix is not None
            or len(resource.frame_numbers) != 1
            or str(resource) != text  # another spelling: the application's to answer
        ):
            return None
        assert resource.study_instance_uid is not None
        frame = FrameFile(
            resource.frame_file(resource.frame_numbers[0]), resource.study_instance_uid
        )
        if len(self._frames) >= MAX_FRAMES:
            self._frames.clear()
        self._frames[path] = frame
        return frame

    def _open(self, frame: FrameFile) -> OpenedFile | None:
        """The frame's file, opened, when the fast path may send it; else None."""
        archive, study = self.context.archive, frame.study
        if archive.is_packed(study) or self.context.is_behind(study):
            return None
        try:
            opened = archive.store.locate(frame.file)
        except (DicomwebArchiveError, OSError):
            return None
        whole = opened.whole_file if opened is not None else None
        if opened is None or whole is None or not frame.seen(opened, whole.info):
            return None
        return whole

    def _learner(self, kind: _Kind, frame: FrameFile, send: Send) -> Send:
        """``send``, learning the head of the application's answer when it fits ``kind``."""
        accept = kind[0]
        try:
            if accept is not None and asks_for_htj2k(parse_accept([accept.decode("latin-1")])):
                return send  # the answer depends on the instance's alternate too
        except DicomwebArchiveError:
            return send  # refused: the application says so
        started: list[Message] = []

        async def observe(message: Message) -> None:
            if message["type"] == _START:
                started.append(message)
            elif message["type"] == PATHSEND and started and started[0]["status"] == 200:
                self._learn(kind, frame, list(started[0]["headers"]), message["path"])
            await send(message)

        return observe

    def _learn(self, kind: _Kind, frame: FrameFile, headers: Headers, path: str) -> None:
        if len(self._heads) >= MAX_HEADS:
            return
        try:
            info = os.stat(path)  # the descriptor the answer sends, still open
        except OSError:
            return
        if file_version(info) != frame.version:
            return  # the file changed since it was opened here
        head = FrameHead.learned(headers, frame, info.st_size)
        if head is not None:
            self._heads[kind] = head
