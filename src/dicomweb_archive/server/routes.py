"""The route table: which service answers which resource path, as data.

Each row names a :class:`~dicomweb_archive.model.patterns.Pattern` (its template is
the route's path), the HTTP method and the service function, named with the
standard's verbs.  A service receives the :class:`Context`, the request and the
:class:`~dicomweb_archive.model.paths.ResourcePath` the request names, its UIDs
validated.  An ``async`` service runs on the event loop (stored bytes, read
from the page cache); a plain one runs in a worker thread.

Starlette tries routes in order: the requests a viewer sends by the hundred
(frames, series metadata) come first, alternate ``framesPath`` names last.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from dicomweb_archive.model.paths import ResourcePath, ResourceType, Suffix
from dicomweb_archive.model.patterns import Pattern
from dicomweb_archive.server import (
    bulkdata,
    deletion,
    extensions,
    frames,
    metadata,
    qido,
    rendered,
    retrieve,
)
from dicomweb_archive.server.browser import browser_routes
from dicomweb_archive.server.context import Context
from dicomweb_archive.server.stow.service import store_instances
from dicomweb_archive.server.viewer import viewer_routes
from dicomweb_archive.viewer.install import find_dist

Service = Callable[[Context, Request, ResourcePath], Response | Awaitable[Response]]

STUDY, SERIES, INSTANCE = ResourceType.STUDY, ResourceType.SERIES, ResourceType.INSTANCE
FRAMES, BULKDATA = ResourceType.FRAMES, ResourceType.BULKDATA
METADATA, RENDERED, THUMBNAIL = Suffix.METADATA, Suffix.RENDERED, Suffix.THUMBNAIL
PIXEL_DATA = Suffix.PIXEL_DATA
EXTENSIONS, BULKDATA_CONTEXT = Suffix.EXTENSIONS, Suffix.BULKDATA


@dataclass(frozen=True)
class Endpoint:
    """One row of the table: a resource pattern, a method and its service."""

    pattern: Pattern
    service: Service
    method: str = "GET"


ROUTES: tuple[Endpoint, ...] = (
    Endpoint(Pattern(FRAMES), frames.retrieve_frames),
    Endpoint(Pattern(SERIES, METADATA), metadata.retrieve_series_metadata),
    # STOW-RS
    Endpoint(Pattern(STUDY, depth=0), store_instances, "POST"),
    Endpoint(Pattern(STUDY), store_instances, "POST"),
    # Deletion (not in PS3.18; as the Azure DICOM service and dcm4chee offer it)
    Endpoint(Pattern(STUDY), deletion.delete_instances, "DELETE"),
    Endpoint(Pattern(SERIES), deletion.delete_instances, "DELETE"),
    Endpoint(Pattern(INSTANCE), deletion.delete_instances, "DELETE"),
    # WADO-RS
    Endpoint(Pattern(STUDY), retrieve.retrieve_study),
    Endpoint(Pattern(SERIES), retrieve.retrieve_series),
    Endpoint(Pattern(INSTANCE), retrieve.retrieve_instance),
    Endpoint(Pattern(STUDY, METADATA), metadata.retrieve_study_metadata),
    Endpoint(Pattern(INSTANCE, METADATA), metadata.retrieve_instance_metadata),
    Endpoint(Pattern(BULKDATA), bulkdata.retrieve_bulkdata),
    Endpoint(Pattern(INSTANCE, PIXEL_DATA), frames.retrieve_pixel_data),
    # QIDO-RS
    Endpoint(Pattern(STUDY, depth=0), qido.search_for_studies),
    Endpoint(Pattern(SERIES, depth=0), qido.search_for_series),
    Endpoint(Pattern(INSTANCE, depth=0), qido.search_for_instances),
    Endpoint(Pattern(SERIES, depth=1), qido.search_for_series),
    Endpoint(Pattern(INSTANCE, depth=1), qido.search_for_instances),
    Endpoint(Pattern(INSTANCE, depth=2), qido.search_for_instances),
    # Rendered resources and thumbnails
    Endpoint(Pattern(STUDY, RENDERED), rendered.retrieve_rendered),
    Endpoint(Pattern(SERIES, RENDERED), rendered.retrieve_rendered),
    Endpoint(Pattern(INSTANCE, RENDERED), rendered.retrieve_rendered),
    Endpoint(Pattern(FRAMES, RENDERED), rendered.retrieve_rendered),
    Endpoint(Pattern(STUDY, THUMBNAIL), rendered.retrieve_thumbnail),
    Endpoint(Pattern(SERIES, THUMBNAIL), rendered.retrieve_thumbnail),
    Endpoint(Pattern(INSTANCE, THUMBNAIL), rendered.retrieve_thumbnail),
    Endpoint(Pattern(FRAMES, THUMBNAIL), rendered.retrieve_thumbnail),
    # Extension folders (…/_{vendor}_{name}/{file}) and the study's lists: the
    # convertor matches extension folder names only, before alternate frames.
    Endpoint(Pattern(STUDY, EXTENSIONS), extensions.retrieve_study_document),
    Endpoint(Pattern(STUDY, BULKDATA_CONTEXT), extensions.retrieve_study_document),
    *(
        Endpoint(Pattern(level, extension=True), service, method)
        for level in (STUDY, SERIES, INSTANCE)
        for service, method in (
            (extensions.retrieve_extension_file, "GET"),
            (extensions.store_extension_file, "PUT"),
        )
    ),
    # Alternate framesPath names (…/htj2k/1, …/htj2kThumbnail/1): after every
    # fixed route, whose literal segments they would also match.
    Endpoint(Pattern(FRAMES, alternate=True), frames.retrieve_frames),
)


def routes(context: Context) -> list[Route]:
    """The Starlette routes of :data:`ROUTES`, each service bound to ``context``."""
    return [_route(context, endpoint) for endpoint in ROUTES]


def _route(context: Context, endpoint: Endpoint) -> Route:
    resolve, service = endpoint.pattern.resolve, endpoint.service
    writes = endpoint.method != "GET"

    def resource(request: Request) -> ResourcePath:
        # A write is authorized before its path is read: a client without the
        # token learns nothing (not even that a UID is malformed).
        if writes:
            context.authorize_write(request)
        return resolve(request.path_params)

    # A read of a study whose documents are behind its instances (STOW-RS writes
    # behind) refreshes them first: no reader sees a half-updated study.
    if inspect.iscoroutinefunction(service):
        on_loop = cast(Callable[[Context, Request, ResourcePath], Awaitable[Response]], service)

        async def answer(request: Request) -> Response:
            named = resource(request)
            if not writes and context.is_behind(named.study_instance_uid):
                await run_in_threadpool(context.settle, named.study_instance_uid)
            return await on_loop(context, request, named)

        handler: Callable[[Request], Response | Awaitable[Response]] = answer
    else:
        in_thread = cast(Callable[[Context, Request, ResourcePath], Response], service)

        def answer_in_thread(request: Request) -> Response:
            named = resource(request)
            if not writes and context.is_behind(named.study_instance_uid):
                context.settle(named.study_instance_uid)
            return in_thread(context, request, named)

        handler = answer_in_thread
    path = "/" + endpoint.pattern.template
    return Route(path, handler, methods=[endpoint.method], name=service.__name__)


def pages(
    context: Context, base_path: str, viewer: str | None, dicomweb: list[BaseRoute]
) -> list[BaseRoute]:
    """Every route of the server: the study browser at ``/`` and the redirects to it
    from the service's root, the ``dicomweb`` routes, then the viewer's, whose
    files and single-page routes take whatever path is left.
    """
    dist = find_dist(viewer) if viewer else None
    return [
        *browser_routes(context.archive, base_path, viewer=dist is not None),
        *dicomweb,
        *viewer_routes(context, dist, base_path.rstrip("/") or "."),
    ]
