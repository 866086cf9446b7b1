"""Rendered resources and thumbnails (PS3.18 8.3.5, 9.5, 9.6).

Images are rendered from the stored frame (decoded, windowed, scaled) as JPEG
or PNG and kept in the archive's private cache, keyed by the frame file's
version and the query, so a second request is a file read.  An encapsulated
document answers with its own bytes (``application/pdf``…) and a video with its
stream, both with byte ranges for ``<video>`` and PDF viewers.  A series or
study renders its middle instance: what viewers show as its thumbnail.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from pydicom.dataset import Dataset
from starlette.requests import Request
from starlette.responses import Response

from dicomweb_archive import tags, uids
from dicomweb_archive.codec.decode import ImagePixel, decode_frame
from dicomweb_archive.codec.render import JPEG, PNG, RenderOptions, render
from dicomweb_archive.errors import ResourceNotFoundError, UnsupportedTransferSyntaxError
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.model.instance import instance_sort_key
from dicomweb_archive.model.paths import ResourcePath, ResourceType, Suffix
from dicomweb_archive.server.context import Context
from dicomweb_archive.server.negotiation import accepted
from dicomweb_archive.server.renditions import RenditionCache
from dicomweb_archive.server.responses import RangeResponse
from dicomweb_archive.server.stored import stored_part
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.types import JSONDataset, first_value

KIND = "rendered"
THUMBNAIL_VIEWPORT = (256, 256)


def _media_type(request: Request) -> str:
    ranges = accepted(request)
    if not ranges:
        return JPEG
    for r in ranges:
        for candidate in (JPEG, PNG):
            if r.matches(candidate):
                return candidate
    raise UnsupportedTransferSyntaxError("rendered images are available as image/jpeg or image/png")


def _read_json(archive: Archive, relative: str) -> list[JSONDataset]:
    documents: list[JSONDataset] = archive.read_json_gz(relative)
    return documents


def _middle(instances: list[JSONDataset]) -> JSONDataset:
    images = [ds for ds in instances if tags.PixelData in ds] or instances
    if not images:
        raise ResourceNotFoundError("nothing to render")
    ordered = sorted(images, key=instance_sort_key)
    return ordered[len(ordered) // 2]


def _bulk_reader(archive: Archive, study: str) -> Callable[[str, str, str], bytes]:
    def read(tag: str, vr: str, uri: str) -> bytes:
        _, payload = multipart.unwrap(archive.read(f"{paths.study_dir(study)}/{uri}"))
        return payload

    return read


def _document(archive: Archive, request: Request, meta: JSONDataset, study: str) -> Response | None:
    """An encapsulated document or a video, answered as its own media type."""
    document = meta.get(tags.EncapsulatedDocument)
    if document:
        media_type = str(
            first_value(meta, tags.MIMETypeOfEncapsulatedDocument) or "application/octet-stream"
        )
        if "BulkDataURI" in document:
            return _bulk(archive, request, study, document["BulkDataURI"], media_type)
        if "InlineBinary" in document:
            body = base64.b64decode(document["InlineBinary"])
            return RangeResponse(request, body, media_type)
    syntax = str(first_value(meta, tags.AvailableTransferSyntaxUID) or "")
    pixel = meta.get(tags.PixelData)
    if pixel and "BulkDataURI" in pixel and syntax in uids.VIDEO_TRANSFER_SYNTAXES:
        # The video stream is kept as one bulk value (not as frames).
        return _bulk(archive, request, study, pixel["BulkDataURI"], uids.frame_media_type(syntax))
    return None


def _bulk(archive: Archive, request: Request, study: str, uri: str, media_type: str) -> Response:
    stored = archive.locate(f"{paths.study_dir(study)}/{uri}")
    _, _, payload = stored_part(stored)
    return RangeResponse(request, payload, media_type)


def _render(
    archive: Archive,
    renditions: RenditionCache,
    request: Request,
    meta: JSONDataset,
    frame: int,
    options: RenderOptions,
) -> Response:
    study = str(first_value(meta, tags.StudyInstanceUID))
    series = str(first_value(meta, tags.SeriesInstanceUID))
    sop = str(first_value(meta, tags.SOPInstanceUID))
    if (
        tags.PixelData not in meta
        or str(first_value(meta, tags.AvailableTransferSyntaxUID)) in uids.VIDEO_TRANSFER_SYNTAXES
    ):
        raise ResourceNotFoundError(f"instance {sop} has no image frame to render")
    stored = archive.locate(paths.frame_path(study, series, sop, frame))

    def make() -> bytes:
        _, syntax, payload = stored_part(stored)
        if not syntax:  # a bare frame (--frames raw): the syntax the metadata names
            available = str(first_value(meta, tags.AvailableTransferSyntaxUID))
            syntax = uids.frame_transfer_syntax(available)
        image = ImagePixel.from_metadata(meta)
        decoded = decode_frame(payload.read(), syntax, image)

        def palette() -> Dataset:
            lut = {k: v for k, v in meta.items() if k.startswith("0028")}
            return Dataset.from_json(lut, bulk_data_uri_handler=_bulk_reader(archive, study))

        return render(decoded, meta, options, bits_stored=image.bits_stored, palette=palette)

    material = f"{stored.path}|{stored.version}|{options.key()}"
    return RangeResponse(request, renditions.one(KIND, material, make), options.media_type)


def retrieve_rendered(context: Context, request: Request, resource: ResourcePath) -> Response:
    """``…/rendered`` of a study, a series, an instance or frames: the path names which."""
    return _rendered(context.archive, context.renditions, request, resource)


def retrieve_thumbnail(context: Context, request: Request, resource: ResourcePath) -> Response:
    """``…/thumbnail`` of a study, a series, an instance or frames."""
    return _rendered(context.archive, context.renditions, request, resource)


def _rendered(
    archive: Archive, renditions: RenditionCache, request: Request, resource: ResourcePath
) -> Response:
    """Any rendered or thumbnail resource, by the level its path names."""
    thumbnail = resource.suffix is Suffix.THUMBNAIL
    params = dict(request.query_params)
    options = RenderOptions.from_query(_media_type(request), params)
    if thumbnail and options.viewport is None:
        options = RenderOptions(options.media_type, options.window, THUMBNAIL_VIEWPORT, 75)
    frame = 1
    if resource.sop_instance_uid is not None:
        study = resource.key.study_instance_uid
        [meta] = _read_json(archive, resource.up(ResourceType.INSTANCE).metadata().file)
        if resource.type is ResourceType.FRAMES:
            frame = resource.frame_numbers[0]
        elif not thumbnail and (document := _document(archive, request, meta, study)):
            return document
        elif tags.PixelData in meta:
            # A multi-frame instance is represented by its middle frame.
            count = int(first_value(meta, tags.NumberOfFrames) or 1)
            frame = (count + 1) // 2 if thumbnail else 1
    else:
        meta = _middle(_read_json(archive, resource.with_suffix(Suffix.METADATA).file))
    return _render(archive, renditions, request, meta, frame, options)
