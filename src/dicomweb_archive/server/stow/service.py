"""STOW-RS: store instances posted to ``/studies`` or ``/studies/{study}``, top to bottom.

A request that cannot be read at all gets 400, 401, 413, 415 or 503 with a
JSON error and stores nothing; otherwise each part is stored on its own and the
answer lists what became of each (see :mod:`.response`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio.to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.errors import (
    ArchiveUnavailableError,
)
from dicomweb_archive.model.paths import ResourcePath
from dicomweb_archive.server.context import Context
from dicomweb_archive.server.stow.body import Spool, boundary_of, check_declared_length
from dicomweb_archive.server.stow.parts import store_parts
from dicomweb_archive.server.stow.response import store_response
from dicomweb_archive.server.urls import service_root
from dicomweb_archive.store.base import scratch_folder
from dicomweb_archive.store.manifest import ensure, read_options

logger = logging.getLogger(__name__)


async def store_instances(context: Context, request: Request, resource: ResourcePath) -> Response:
    """``POST /studies`` and ``POST /studies/{study}``, authorized by the route (first)."""
    study = resource.study_instance_uid
    boundary = boundary_of(request.headers.get("content-type"))
    check_declared_length(request, context.max_upload_bytes)
    spool = Spool(Path(scratch_folder(context.archive.store)), context.max_upload_bytes)
    try:
        options = await anyio.to_thread.run_sync(_convert_options, context)
        parts = await spool.receive(request, boundary)
        outcomes = await anyio.to_thread.run_sync(
            store_parts, context.archive, options, parts, study
        )
    except OSError as exc:  # preparing the archive or spooling the body
        raise ArchiveUnavailableError(f"the archive cannot be written: {exc}") from exc
    except ClientDisconnect:
        # Nothing was stored and nobody is left to answer.
        logger.info("STOW-RS: the client went away before the body was complete")
        return Response(status_code=400)
    finally:
        spool.discard()
    return store_response(service_root(request, context.base_url), study, outcomes)


def _convert_options(context: Context) -> ConvertOptions:
    """The archive's own conversion options, checked against its manifest once."""
    if context.convert_options is None:
        stored = read_options(context.archive)
        ensure(context.archive.store, stored)
        context.convert_options = ConvertOptions.for_archive(
            stored, workers=1, on_duplicate=context.on_duplicate
        )
    return context.convert_options
