"""WADO-RS frames: the frame path, top to bottom.

``…/frames/1,2`` (or an alternate ``framesPath``: ``…/htj2k/1``) is answered in
four steps, each a function below in the order it runs:

1. :func:`retrieve_frames` runs on the event loop; a single frame whose stored
   bytes are in the page cache is answered there (a stat and one read, cheaper
   than a hand-off), anything else from a worker thread.
2. :func:`_representations`: the stored representations of the frames, the
   primary ones and the HTJ2K alternate when a transcoding recorded one.
3. :func:`~dicomweb_archive.server.negotiation.choose_pixels` picks the one the
   client accepts, or a decoded Explicit VR Little Endian rendition (406 when
   none fits).
4. The answer: the stored body untouched (ranges, ETag), its payload alone, a
   multipart body of several frames, HTJ2K codestreams cut to a resolution, or
   decoded frames; the last three from a worker thread.

The usual request of a viewer, one stored frame sent whole, is answered before
it gets here by :mod:`.fastpath`, with the head this path gave the first
request of its kind.
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from dicomweb_archive import tags, uids
from dicomweb_archive.codec import codestream, htj2k
from dicomweb_archive.codec.decode import DECODERS, Decoded, ImagePixel, decode_frame, native_bytes
from dicomweb_archive.errors import InvalidInputError, ResourceNotFoundError
from dicomweb_archive.media import OCTET_STREAM, MediaRange
from dicomweb_archive.model import multipart, paths, transcoded
from dicomweb_archive.model.paths import ResourcePath, ResourceType
from dicomweb_archive.numerals import parse_unsigned
from dicomweb_archive.server import jpegls
from dicomweb_archive.server.conditions import precondition
from dicomweb_archive.server.context import Context
from dicomweb_archive.server.joined import Joined, Measured
from dicomweb_archive.server.negotiation import Rendition, Stored, accepted, choose_pixels
from dicomweb_archive.server.pathsend import sends_paths
from dicomweb_archive.server.renditions import RenditionCache
from dicomweb_archive.server.responses import (
    SMALL,
    RangeResponse,
    ThreadedResponse,
    entity_tag,
    representation_tag,
    slice_tag,
)
from dicomweb_archive.server.stored import HEAD_SIZE, Uncached, read, stored_part
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.slices import Slice
from dicomweb_archive.types import first_value

#: Alternate ``framesPath`` names that ask for a reduced image (client-contract §6).
JLS_THUMBNAIL = "jlsthumbnail"
THUMBNAIL_PATHS = frozenset({"htj2kthumbnail", JLS_THUMBNAIL})
#: Largest side of the image an alternate thumbnail path answers with.
THUMBNAIL_SIZE = 128
#: The end-of-codestream marker of JPEG 2000.
EOC = b"\xff\xd9"


async def retrieve_frames(context: Context, request: Request, resource: ResourcePath) -> Response:
    """Frames (``…/frames/1,2``) or an alternate ``framesPath`` (``…/htj2k/1``)."""
    reader, numbers = context.archive, resource.frame_numbers
    if len(numbers) == 1 and reader.local_files:  # remote reads never block the loop
        with contextlib.suppress(Uncached):
            return _answer(reader, context.renditions, request, resource, numbers, inline=True)
    return ThreadedResponse(
        lambda: _answer(reader, context.renditions, request, resource, numbers, inline=False)
    )


def retrieve_pixel_data(context: Context, request: Request, resource: ResourcePath) -> Response:
    """Every frame of an instance: its Pixel Data's BulkDataURI (``…/instances/{sop}/frames``).

    Not bounded like a frame list: the instance's own frames, each once,
    streamed one at a time.
    """
    [meta] = context.archive.read_json_gz(resource.metadata().file)
    count = parse_unsigned(str(first_value(meta, tags.NumberOfFrames) or 1))
    numbers = tuple(range(1, max(count, 1) + 1))
    return _answer(context.archive, context.renditions, request, resource, numbers, inline=False)


@dataclass
class _Frames:
    """One stored representation of the asked frames.

    The first frame is open; the others are measured only, and opened one at
    a time when their turn comes (see :mod:`.joined`).
    """

    frames: list[Measured]
    first: Slice
    media_type: str
    transfer_syntax: str
    #: The first frame's whole stored body when small enough to hold.
    body: bytes | bytearray | None
    payload: Slice
    #: Stored bare (``--frames raw``), not as single-part bodies.
    raw: bool = False

    @classmethod
    def load(
        cls, reader: Archive, files: list[str], inline: bool, describe: Describe, by_path: bool
    ) -> _Frames:
        # The usual request, one frame of a few hundred kilobytes, is read once,
        # here, instead of again while the answer is sent; not at all when it
        # is a whole file and the server sends files itself (``by_path``).
        first = reader.locate(files[0])
        measured = [Measured.of(files[0], first)]
        measured += [Measured.of(f, reader.locate(f)) for f in files[1:]]
        small = len(files) == 1 and first.length <= SMALL
        body = read(first, inline) if small and not (by_path and first.whole_file) else None
        head = body[:HEAD_SIZE] if body else None
        media_type, syntax, payload = stored_part(first, head, inline)
        raw = not media_type
        if raw:  # --frames raw: bare payloads, described by the instance
            media_type, syntax = describe()
        return cls(measured, first, media_type, syntax, body, payload, raw)

    @property
    def versions(self) -> list[str]:
        return [f"{m.relative}:{m.version}" for m in self.frames]

    def payloads(self, reader: Archive) -> Iterator[bytes]:
        """Each frame's payload in turn: one frame in memory at a time."""
        if self.body is not None:
            start = self.payload.offset - self.first.offset
            yield bytes(self.body[start : start + self.payload.length])
            return
        yield self.payload.read()
        for frame in self.frames[1:]:
            yield stored_part(frame.open(reader))[2].read()


@dataclass(frozen=True)
class _Made:
    """A representation encoded on request from the primary frames (:mod:`.renditions`)."""

    kind: str
    media_type: str
    transfer_syntax: str


_JPEGLS = _Made(jpegls.KIND, jpegls.MEDIA_TYPE, jpegls.TRANSFER_SYNTAX)
_HTJ2K = _Made("htj2k", "image/jphc", uids.HTJ2KLosslessRPCL)
_LOSSLESS_HTJ2K = frozenset({uids.HTJ2KLossless, uids.HTJ2KLosslessRPCL})


def _answer(
    reader: Archive,
    renditions: RenditionCache,
    request: Request,
    resource: ResourcePath,
    numbers: tuple[int, ...],
    inline: bool,
) -> Response:
    ranges = accepted(request)
    reduce_to = _reduction(request, resource)
    alternate = resource.frames_path != paths.FRAMES
    by_path = sends_paths(request.scope)
    sources = _representations(
        reader, resource, numbers, ranges, reduce_to is not None, inline, by_path
    )
    primary = sources[-1] if alternate and len(sources) > 1 else sources[0]
    decodable = primary.transfer_syntax in DECODERS
    # A reduced JPEG-LS rendition is offered wherever a reduced image is asked
    # for and the frames decode: first on the JPEG-LS thumbnail path.  HTJ2K
    # Lossless is offered, last, to a client asking for HTJ2K where none is
    # stored losslessly.
    candidates: list[_Frames | _Made] = list(sources)
    if reduce_to is not None and decodable:
        jls_first = resource.frames_path == JLS_THUMBNAIL
        candidates.insert(0 if jls_first else len(candidates), _JPEGLS)
    elif (
        decodable
        and asks_for_htj2k(ranges)
        and not any(c.transfer_syntax in _LOSSLESS_HTJ2K for c in sources)
        and _encodable_as_htj2k(reader, resource, primary.transfer_syntax)
    ):
        candidates.append(_HTJ2K)
    offers = [Stored(c.media_type, c.transfer_syntax) for c in candidates]
    rendition = choose_pixels(
        ranges, stored=offers, decodable=decodable, single_part=len(numbers) == 1
    )
    chosen = candidates[rendition.source] if rendition.stored else None
    if isinstance(chosen, _Made) or (
        reduce_to and chosen is not None and chosen.media_type == jpegls.MEDIA_TYPE
    ):
        made = chosen if isinstance(chosen, _Made) else _JPEGLS
        response: Response = ThreadedResponse(
            lambda: _made(renditions, request, resource, rendition, primary, made, reduce_to)
        )
    else:
        response = _respond(reader, request, resource, rendition, chosen, primary, reduce_to)
    return _warned(response, rendition.warning)


def _encodable_as_htj2k(reader: Archive, resource: ResourcePath, transfer_syntax: str) -> bool:
    [meta] = reader.read_json_gz(resource.up(ResourceType.INSTANCE).metadata().file)
    return htj2k.frames_refusal(ImagePixel.from_metadata(dict(meta)), transfer_syntax) is None


def _respond(
    reader: Archive,
    request: Request,
    resource: ResourcePath,
    rendition: Rendition,
    chosen: _Frames | None,
    primary: _Frames,
    reduce_to: int | None,
) -> Response:
    if chosen is None:
        return ThreadedResponse(lambda: _decoded(reader, request, resource, rendition, primary))
    if reduce_to and chosen.transfer_syntax in uids.HTJ2K_TRANSFER_SYNTAXES:
        return ThreadedResponse(lambda: _reduced(reader, request, rendition, chosen, reduce_to))
    return _stored(reader, request, rendition, chosen)


def _warned(response: Response, warning: str) -> Response:
    """``response`` with a ``Warning`` header, once it is made."""
    if not warning:
        return response
    if isinstance(response, ThreadedResponse):
        make = response.make
        return ThreadedResponse(lambda: _warned(make(), warning))
    response.headers["Warning"] = warning
    return response


def _made(
    renditions: RenditionCache,
    request: Request,
    resource: ResourcePath,
    rendition: Rendition,
    primary: _Frames,
    made: _Made,
    reduce_to: int | None,
) -> Response:
    """The frames encoded on request: reduced JPEG-LS, or full HTJ2K Lossless."""
    if made is _JPEGLS:
        size = reduce_to or THUMBNAIL_SIZE
        variant, encoder = f"<={size}", jpegls.encoder(size)
    else:
        variant, encoder = "lossless", _htj2k_lossless
    named = [(m.relative, m.version) for m in primary.frames]
    payloads = primary.payloads(renditions.archive)
    bodies = renditions.frames(
        made.kind, variant, resource, named, payloads, primary.transfer_syntax, encoder
    )
    etag = entity_tag(*primary.versions, f"{made.kind}{variant}")
    if not rendition.multipart:
        single = multipart.content_type(made.media_type, made.transfer_syntax)
        return RangeResponse(request, next(bodies), single, etag=etag)
    return _multipart(request, made.media_type, made.transfer_syntax, bodies, etag)


def _htj2k_lossless(decoded: Decoded, image: ImagePixel) -> bytes:
    return htj2k.encode_frame(decoded, image, htj2k.HTJ2KSettings()).codestream


def _reduction(request: Request, resource: ResourcePath) -> int | None:
    """The largest side asked for: ``resolution=W,H``, or a thumbnail path's."""
    text = request.query_params.get("resolution")
    if text:
        try:
            sizes = [parse_unsigned(v) for v in text.split(",")[:2]]
        except ValueError:
            raise InvalidInputError("resolution is width,height") from None
        if not sizes or min(sizes) < 1:
            raise InvalidInputError("resolution is width,height")
        return max(sizes)
    if resource.frames_path in THUMBNAIL_PATHS:
        return THUMBNAIL_SIZE
    return None


def _representations(
    reader: Archive,
    resource: ResourcePath,
    numbers: tuple[int, ...],
    ranges: list[MediaRange],
    reduced: bool,
    inline: bool,
    by_path: bool,
) -> list[_Frames]:
    """The stored representations of the frames, the preferred one first.

    The HTJ2K alternate is looked for only when it may be wanted: an alternate
    path prefers it, ``frames/`` the primary frames.
    """
    primary = [resource.frame_file(n) for n in numbers]
    info = _Info(reader, resource, inline)
    sources = [_Frames.load(reader, primary, inline, info.primary, by_path)]
    alternate = resource.frames_path != paths.FRAMES
    if alternate or reduced or asks_for_htj2k(ranges):
        found = _alternate(reader, resource, numbers, info)
        if found is not None:
            htj2k = _Frames.load(reader, found, inline, info.alternate, by_path)
            sources.insert(0 if alternate else 1, htj2k)
    return sources


def asks_for_htj2k(ranges: list[MediaRange]) -> bool:
    return any(
        "jphc" in (r.part_type or "") + r.media_type
        or r.transfer_syntax in uids.HTJ2K_TRANSFER_SYNTAXES
        for r in ranges
    )


class _Info:
    """The instance's ``info.json.gz``, read once when first needed."""

    def __init__(self, reader: Archive, resource: ResourcePath, inline: bool) -> None:
        self.reader, self.resource, self.inline = reader, resource, inline
        self._document: dict[str, Any] | None = None

    @property
    def document(self) -> dict[str, Any]:
        if self._document is None:
            stored = self.reader.locate(self.resource.instance_file(paths.INFO))
            self._document = orjson.loads(gzip.decompress(read(stored, self.inline)))
        return self._document

    def primary(self) -> tuple[str, str]:
        """Media type and transfer syntax of the instance's bare frames."""
        syntax = uids.frame_transfer_syntax(str(self.document["transferSyntaxUID"]))
        return uids.frame_media_type(syntax), syntax

    def alternate(self) -> tuple[str, str]:
        """Media type and transfer syntax of the bare HTJ2K alternate."""
        syntax = str(self.record["transferSyntaxUID"])
        return uids.frame_media_type(syntax), syntax

    @property
    def record(self) -> dict[str, Any]:
        return dict(self.document.get(transcoded.RECORD) or {})


Describe = Callable[[], tuple[str, str]]


def _alternate(
    reader: Archive, resource: ResourcePath, numbers: tuple[int, ...], info: _Info
) -> list[str] | None:
    """The HTJ2K alternate of the frames, when a finished transcoding recorded one."""
    record = info.record
    if record.get("mode") != transcoded.ALTERNATE:
        return None  # none, or primary frames staged there by an unfinished run
    if max(numbers) > int(record.get("numberOfFrames", 0)):
        return None
    files = [resource.frame_file(n, paths.HTJ2K) for n in numbers]
    try:
        reader.locate(files[0])
    except ResourceNotFoundError:
        return None
    return files


def _stored(reader: Archive, request: Request, rendition: Rendition, chosen: _Frames) -> Response:
    """Stored frames as they are: the whole body, its payload, or several joined."""
    first = chosen.first
    if chosen.raw and rendition.multipart:
        content_type = multipart.content_type(chosen.media_type, chosen.transfer_syntax)
        joined = Joined.bare_frames(reader, chosen.frames, content_type)
        return RangeResponse(request, joined, multipart.response_content_type(chosen.media_type))
    if rendition.multipart and len(chosen.frames) == 1:
        # The stored body itself: identical bytes on every request, ranges work.
        outer = multipart.response_content_type(chosen.media_type)
        if chosen.body is not None:
            return RangeResponse(request, chosen.body, outer, etag=slice_tag(first))
        return RangeResponse(request, first, outer)
    if not rendition.multipart:
        single = multipart.content_type(chosen.media_type, chosen.transfer_syntax)
        if chosen.body is not None:
            [data] = chosen.payloads(reader)
            return RangeResponse(request, data, single, etag=slice_tag(chosen.payload))
        return RangeResponse(request, chosen.payload, single)
    joined = Joined.stored_frames(reader, chosen.frames)
    return RangeResponse(request, joined, multipart.response_content_type(chosen.media_type))


def _reduced(
    reader: Archive, request: Request, rendition: Rendition, chosen: _Frames, size: int
) -> Response:
    """HTJ2K frames cut after the resolution level that fits ``size``.

    The resolution levels of an RPCL codestream written one tile-part each come
    in order, so the first tile-parts and an end-of-codestream marker are a
    valid codestream of a smaller image: no decoding, no re-encoding.
    """
    etag = entity_tag(*chosen.versions, f"resolution<={size}")
    cut = (_cut(data, size) for data in chosen.payloads(reader))
    if not rendition.multipart:
        content_type = multipart.content_type(chosen.media_type, chosen.transfer_syntax)
        return RangeResponse(request, next(cut), content_type, etag=etag)
    return _multipart(request, chosen.media_type, chosen.transfer_syntax, cut, etag)


def _cut(data: bytes, size: int) -> bytes:
    try:
        parsed = codestream.parse(data)
    except Exception:
        return data
    level = parsed.smallest_resolution_within(size)
    end = parsed.resolution_prefix(level if level is not None else 0)
    return data if end is None or end >= len(data) - 2 else data[:end] + EOC


def _decoded(
    reader: Archive,
    request: Request,
    resource: ResourcePath,
    rendition: Rendition,
    primary: _Frames,
) -> Response:
    """The primary frames decoded into Explicit VR Little Endian."""
    instance = resource.up(ResourceType.INSTANCE).metadata()
    [meta] = reader.read_json_gz(instance.file)
    image = ImagePixel.from_metadata(dict(meta))
    payloads = (
        native_bytes(decode_frame(p, primary.transfer_syntax, image))
        for p in primary.payloads(reader)
    )
    etag = entity_tag(*primary.versions, rendition.transfer_syntax)
    if not rendition.multipart:
        content_type = multipart.content_type(OCTET_STREAM, rendition.transfer_syntax)
        return RangeResponse(request, next(payloads), content_type, etag=etag)
    return _multipart(request, OCTET_STREAM, rendition.transfer_syntax, payloads, etag)


def _multipart(
    request: Request, media_type: str, syntax: str, payloads: Iterator[bytes], etag: str
) -> Response:
    """Computed frames, made and sent one at a time (no length known beforehand, no ranges)."""
    outer = multipart.response_content_type(media_type)
    tag = representation_tag(etag, outer)
    if precondition(request, tag) is not None:  # 304 or 412, answered alike
        return RangeResponse(request, b"", outer, etag=etag)
    header = multipart.header(multipart.content_type(media_type, syntax))

    def parts() -> Iterator[bytes]:
        for index, payload in enumerate(payloads):
            yield (b"\r\n" if index else b"") + header + payload
        yield multipart.TRAILER

    return StreamingResponse(parts(), media_type=outer, headers={"ETag": tag})
