"""WADO-RS bulk data: content-addressed values at ``studies/{study}/bulkdata/…``.

The stored single-part body goes out untouched for a multipart request, its
payload alone otherwise; answered on the event loop when cached.
"""

from __future__ import annotations

import contextlib

from starlette.requests import Request
from starlette.responses import Response

from dicomweb_archive import uids
from dicomweb_archive.model import multipart
from dicomweb_archive.model.paths import ResourcePath
from dicomweb_archive.server.context import Context
from dicomweb_archive.server.negotiation import Stored, accepted, choose_pixels
from dicomweb_archive.server.responses import RangeResponse, ThreadedResponse
from dicomweb_archive.server.stored import Uncached, stored_part


async def retrieve_bulkdata(context: Context, request: Request, resource: ResourcePath) -> Response:
    if context.archive.local_files:  # remote reads never block the event loop
        with contextlib.suppress(Uncached):
            return _bulkdata(context, request, resource, inline=True)
    return ThreadedResponse(lambda: _bulkdata(context, request, resource, inline=False))


def _bulkdata(context: Context, request: Request, resource: ResourcePath, inline: bool) -> Response:
    stored = context.archive.locate(resource.file)
    media_type, syntax, payload = stored_part(stored, inline=inline)
    rendition = choose_pixels(
        accepted(request),
        stored=[Stored(media_type, syntax or uids.ExplicitVRLittleEndian)],
        decodable=False,
        single_part=True,
    )
    if rendition.multipart:
        return RangeResponse(request, stored, multipart.response_content_type(media_type))
    return RangeResponse(request, payload, media_type)
