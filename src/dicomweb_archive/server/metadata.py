"""WADO-RS metadata: the stored DICOM JSON of a study, a series or an instance.

The documents are stored gzipped and go out as they are, with
``Content-Encoding: gzip``, to every client that accepts it (ranges, ETag and
HEAD on the stored bytes); the others get them inflated, from a worker thread.
Answered on the event loop: one stat and, when cached, one read.
"""

from __future__ import annotations

import gzip

from starlette.requests import Request
from starlette.responses import Response

from dicomweb_archive.errors import UnsupportedTransferSyntaxError
from dicomweb_archive.media import DICOM_JSON
from dicomweb_archive.model.paths import ResourcePath
from dicomweb_archive.server.context import Context
from dicomweb_archive.server.negotiation import accepted
from dicomweb_archive.server.responses import (
    RangeResponse,
    ThreadedResponse,
    entity_tag,
    not_modified,
    representation_tag,
)


async def retrieve_study_metadata(
    context: Context, request: Request, resource: ResourcePath
) -> Response:
    return _retrieve_metadata(context, request, resource)


async def retrieve_series_metadata(
    context: Context, request: Request, resource: ResourcePath
) -> Response:
    return _retrieve_metadata(context, request, resource)


async def retrieve_instance_metadata(
    context: Context, request: Request, resource: ResourcePath
) -> Response:
    return _retrieve_metadata(context, request, resource)


def _retrieve_metadata(context: Context, request: Request, resource: ResourcePath) -> Response:
    ranges = accepted(request)
    if ranges and not any(r.matches(DICOM_JSON) and not r.params for r in ranges):
        raise UnsupportedTransferSyntaxError("metadata is available as application/dicom+json only")
    stored = context.archive.locate(resource.file)
    headers = {"Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        headers["Content-Encoding"] = "gzip"
        return RangeResponse(request, stored, DICOM_JSON, headers=headers)
    etag = entity_tag(stored.version, "identity")
    if not_modified(request, representation_tag(etag, DICOM_JSON)):
        return RangeResponse(request, b"", DICOM_JSON, headers=headers, etag=etag)
    return ThreadedResponse(
        lambda: RangeResponse(
            request, gzip.decompress(stored.read()), DICOM_JSON, headers=headers, etag=etag
        )
    )
