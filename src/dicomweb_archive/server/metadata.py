"""WADO-RS metadata: the stored DICOM JSON of a study, a series or an instance.

The documents are stored gzipped with BulkDataURIs relative to their study
(any static host serves them); the server answers them absolute (see
:mod:`~dicomweb_archive.server.urls`), gzipped again, fast, for every client
that accepts it, from a worker thread, with ranges, ETag and HEAD; answers
made are kept (:mod:`.documents`) and sent from the event loop.
"""

from __future__ import annotations

import gzip

from starlette.requests import Request
from starlette.responses import Response

from dicomweb_archive.errors import UnsupportedTransferSyntaxError
from dicomweb_archive.media import DICOM_JSON
from dicomweb_archive.model.paths import ResourcePath, ResourceType
from dicomweb_archive.server.conditions import precondition
from dicomweb_archive.server.context import Context
from dicomweb_archive.server.documents import DocumentKey
from dicomweb_archive.server.negotiation import accepted
from dicomweb_archive.server.responses import (
    RangeResponse,
    ThreadedResponse,
    entity_tag,
    representation_tag,
)
from dicomweb_archive.server.urls import absolute_bulkdata_uris, service_root


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
    if not context.archive.local_files:  # a remote read never blocks the event loop
        return ThreadedResponse(lambda: _metadata(context, request, resource))
    return _metadata(context, request, resource)


def _metadata(context: Context, request: Request, resource: ResourcePath) -> Response:
    ranges = accepted(request)
    if ranges and not any(r.matches(DICOM_JSON) and not r.params for r in ranges):
        raise UnsupportedTransferSyntaxError("metadata is available as application/dicom+json only")
    stored = context.archive.locate(resource.file)
    root = service_root(request, context.base_url)
    study_url = f"{root}/{resource.up(ResourceType.STUDY)}"
    headers = {"Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        headers["Content-Encoding"] = "gzip"
    etag = entity_tag(stored.version, study_url)
    coding = headers.get("Content-Encoding", "")
    if precondition(request, representation_tag(etag, DICOM_JSON, coding)) is not None:
        return RangeResponse(request, b"", DICOM_JSON, headers=headers, etag=etag)

    key = DocumentKey(resource.file, stored.version, stored.offset, study_url, coding)
    kept = context.documents.get(key)
    if kept is not None:
        return RangeResponse(request, kept, DICOM_JSON, headers=headers, etag=etag)

    def answer() -> Response:
        document = absolute_bulkdata_uris(gzip.decompress(stored.read()), study_url)
        body = gzip.compress(document, compresslevel=1, mtime=0) if coding else document
        context.documents.put(key, body)
        return RangeResponse(request, body, DICOM_JSON, headers=headers, etag=etag)

    return ThreadedResponse(answer)
