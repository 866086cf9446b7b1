"""Extension folders over HTTP, and the study's own JSON documents.

``GET`` of ``…/{study|series|instance}/_{vendor}_{name}/{file}`` answers the
stored file with the content type its name gives (ranges, ETag, HEAD);
``PUT`` there stores the request body as that file, behind the write token
(:func:`~dicomweb_archive.store.extensions.attach`): 201 when it is new, 200
when it replaced or equalled a file.  ``/studies/{study}/extensions`` and
``/studies/{study}/bulkdata`` answer the study's lists as JSON.
"""

from __future__ import annotations

import gzip
import tempfile

import anyio.to_thread
import orjson
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from dicomweb_archive.model import extensions
from dicomweb_archive.model.paths import ResourcePath
from dicomweb_archive.model.patterns import EXTENSION_CONVERTOR
from dicomweb_archive.server.context import Context
from dicomweb_archive.server.responses import RangeResponse, ThreadedResponse
from dicomweb_archive.server.stow.body import check_declared_length, too_large
from dicomweb_archive.server.urls import service_root
from dicomweb_archive.store.base import scratch_folder
from dicomweb_archive.store.extensions import attach

JSON = "application/json"
#: A request body is held in memory up to this size, then spooled to a file.
_IN_MEMORY = 1 << 20
#: Third-party files are never sniffed into something a browser would run.
_NO_SNIFF = {"X-Content-Type-Options": "nosniff"}


class ExtensionFolderConvertor(Convertor[str]):
    """Matches extension folder names only, so other routes keep their paths."""

    regex = extensions.FOLDER_PATTERN

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor(EXTENSION_CONVERTOR, ExtensionFolderConvertor())


async def retrieve_extension_file(
    context: Context, request: Request, resource: ResourcePath
) -> Response:
    stored = context.archive.locate(resource.file)
    media_type = extensions.content_type(str(resource.extension_file))
    return RangeResponse(request, stored, media_type, headers=_NO_SNIFF)


async def store_extension_file(
    context: Context, request: Request, resource: ResourcePath
) -> Response:
    """``PUT`` one file of an extension folder (authorized by the route, first)."""
    limit = context.max_upload_bytes
    check_declared_length(request, limit)
    folder = scratch_folder(context.archive.store)
    with tempfile.SpooledTemporaryFile(_IN_MEMORY, dir=folder) as body:
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if limit is not None and received > limit:
                    raise too_large(limit)
                await anyio.to_thread.run_sync(body.write, chunk)
        except ClientDisconnect:
            return Response(status_code=400)
        body.seek(0)
        where = resource.up(resource.type)
        [attached] = await anyio.to_thread.run_sync(
            attach,
            context.archive,
            where,
            str(resource.extension),
            [(str(resource.extension_file), body)],
        )
    url = f"{service_root(request, context.base_url)}/{resource}"
    answer = {
        "url": url,
        "size": attached.size,
        "contentType": attached.content_type,
        "changed": attached.changed,
    }
    return Response(
        orjson.dumps(answer),
        status_code=201 if attached.created else 200,
        media_type=JSON,
        headers={"Location": url} if attached.created else None,
    )


async def retrieve_study_document(
    context: Context, request: Request, resource: ResourcePath
) -> Response:
    """A study's ``extensions`` or ``bulkdata`` list: JSON, gzipped when accepted."""
    stored = context.archive.locate(resource.file)
    headers = {"Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        headers["Content-Encoding"] = "gzip"
        return RangeResponse(request, stored, JSON, headers=headers)

    def answer() -> Response:
        return RangeResponse(request, gzip.decompress(stored.read()), JSON, headers=headers)

    return ThreadedResponse(answer)
