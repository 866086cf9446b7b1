"""The ASGI application: the route table mounted, error mapping, CORS, the index's lifetime."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import ASGIApp, Scope

from dicomweb_archive.collector import QuietCollector
from dicomweb_archive.deidentify.keys import PseudonymKey
from dicomweb_archive.errors import (
    DicomwebArchiveError,
    MethodNotAllowedError,
    RangeNotSatisfiableError,
    ResourceNotFoundError,
)
from dicomweb_archive.server.context import DEFAULT_MAX_UPLOAD_BYTES, Context
from dicomweb_archive.server.fastpath import UsualFrames
from dicomweb_archive.server.middleware import (
    AccessLog,
    ResourcePolicy,
    enable_access_log,
    flush_access_log,
)
from dicomweb_archive.server.renditions import DEFAULT_BUDGET
from dicomweb_archive.server.routes import pages, routes
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.correction import finish_corrections
from dicomweb_archive.store.flusher import Flusher
from dicomweb_archive.store.manifest import DuplicatePolicy, open_or_create
from dicomweb_archive.store.removal import finish_deletions
from dicomweb_archive.store.staging import recover_staged

#: The environment variable carrying :func:`create_app`'s arguments to the
#: worker processes of ``dwa serve --workers`` (see :func:`app_from_environment`).
OPTIONS_VARIABLE = "DWA_SERVE_OPTIONS"

logger = logging.getLogger(__name__)


def _routing_error(request: Request, exc: HTTPException) -> DicomwebArchiveError | None:
    """A routing refusal (no route, or not this method) as an error of our tree."""
    if exc.status_code == 404:
        return ResourceNotFoundError(f"no resource {request.url.path}")
    if exc.status_code == 405:
        # Starlette's Allow names the first route of the path only; every route counts.
        # The scope's root_path grew by each mount entered: route from the top again.
        scope = {
            **request.scope,
            "root_path": request.scope.get("app_root_path", request.scope.get("root_path", "")),
        }
        allow = ", ".join(sorted(_allowed_methods(request.app.routes, scope)))
        return MethodNotAllowedError(
            f"{request.method} is not allowed on {request.url.path}", allow=allow
        )
    return None


def _allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> set[str]:
    """The methods of every route whose path matches the request's."""
    methods: set[str] = set()
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            methods |= _allowed_methods(route.routes, {**scope, **child})
        elif isinstance(route, Route) and route.methods:
            methods |= route.methods
    return methods


def error_response(request: Request, exc: Exception) -> Response:
    """The one answer to every error: its status and ``{"status", "error", "detail"}``.

    Errors of our tree (routing 404 and 405 become theirs) answer with their
    ``http_status``; anything else is a bug, a 500 whose traceback the server logs.
    A 416 alone has no body: range loaders append whatever a range answer holds
    to the bytes they have, whatever its status (client-contract §4).
    """
    if isinstance(exc, HTTPException):
        exc = _routing_error(request, exc) or exc
    if isinstance(exc, RangeNotSatisfiableError):
        return Response(status_code=exc.http_status, headers=exc.headers)
    headers: Mapping[str, str] = {}
    if isinstance(exc, DicomwebArchiveError):
        status, headers, body = exc.http_status, exc.headers, exc.to_json()
        if status >= 500:  # the archive's fault, not the client's: tell the operator
            logger.error("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    else:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = "internal error; the server's log has the details"
        if isinstance(exc, HTTPException):
            headers, detail = exc.headers or {}, exc.detail
        body = {"status": status, "error": type(exc).__name__, "detail": detail}
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


class _Application(Starlette):
    """Starlette, the usual frame request answered before its middleware (:mod:`.fastpath`)."""

    def __init__(self, context: Context, base_path: str, **options: Any) -> None:
        self.context, self.base_path = context, base_path
        super().__init__(**options)

    def build_middleware_stack(self) -> ASGIApp:
        return UsualFrames(super().build_middleware_stack(), self.context, self.base_path)


def app_from_environment() -> Starlette:
    """:func:`create_app` with the keyword arguments in ``$DWA_SERVE_OPTIONS`` (JSON).

    The application factory of each worker process of ``dwa serve --workers``;
    ``"access_log": true`` there also turns the access log on in the worker.
    """
    options = orjson.loads(os.environ[OPTIONS_VARIABLE])
    if options.pop("access_log", False):
        enable_access_log()
    options["cors_origins"] = tuple(options.get("cors_origins", ("*",)))
    return create_app(**options)


def create_app(
    archive_root: str | os.PathLike[str],
    *,
    base_path: str = "/dicomweb",
    cors_origins: tuple[str, ...] = ("*",),
    write_token: str | None = None,
    max_upload_bytes: int | None = DEFAULT_MAX_UPLOAD_BYTES,
    base_url: str | None = None,
    viewer: str | None = None,
    cache_budget: int = DEFAULT_BUDGET,
    deidentify_key: str | None = None,
    on_duplicate: DuplicatePolicy | None = None,
) -> Starlette:
    """A DICOMweb server over the archive at ``archive_root``.

    An empty or new folder becomes an empty archive.  QIDO-RS is answered from
    the archive's SQLite index, built at start-up when missing; WADO-RS reads the
    archive's files.  STOW-RS stores into the archive through the converter; with
    ``write_token`` it needs ``Authorization: Bearer`` with that token, and bodies
    beyond ``max_upload_bytes`` (``None``: no limit) are refused.  ``base_url`` is
    where clients reach the service root, for the absolute URLs of answers (else
    each request's own scheme and ``Host``).  The study browser is at ``/``; with
    ``viewer`` (a folder holding OHIF's build, or ``auto``) the OHIF viewer is at
    ``/viewer``.  Renditions made on request keep at most ``cache_budget``
    bytes in the archive's cache.  With ``deidentify_key`` (a key file)
    retrieves answer ``?deidentify=PROFILE`` with de-identified files.
    ``on_duplicate`` is the duplicates policy of STOW-RS (None: the archive's
    manifest says, else ``reject``).
    """
    archive = open_archive(archive_root)
    open_or_create(archive.store)
    context = Context(
        archive,
        write_token=write_token,
        max_upload_bytes=max_upload_bytes,
        base_url=base_url,
        cache_budget=cache_budget,
        deidentify_key=PseudonymKey.read(deidentify_key) if deidentify_key else None,
        on_duplicate=on_duplicate,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Finish the instance updates a killed server committed but did not
        # apply, before any reader sees them half done; the flusher redoes
        # their studies' documents.
        context.catalog.defer_instances(recover_staged(archive))
        finish_deletions(archive)  # what a killed deletion or correction left
        finish_corrections(archive)
        context.index = context.catalog.open_index()
        flusher = Flusher(context.catalog).start()
        # What start-up made (modules, tables, the index) lasts as long as the
        # server: kept out of the collector's full passes, which walked it all
        # at every one (30-40 ms in whichever request met it: the p99 of QIDO-RS).
        gc.collect()
        gc.freeze()
        # What it made since (views of studies, recalled instances): full
        # passes over it at quiet moments only (:mod:`~dicomweb_archive.collector`).
        collector = QuietCollector().start()
        try:
            yield
        finally:
            collector.stop()
            gc.unfreeze()  # a process serving again (tests) collects it as before
            flusher.stop()
            context.index.close()
            archive.close()
            flush_access_log()  # the lines held: a stopped server's log is whole

    served = routes(context)
    middleware = [
        Middleware(AccessLog),
        Middleware(ResourcePolicy),
        Middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"],
            allow_headers=[
                "Accept",
                "Authorization",
                "Range",
                "Content-Type",
                "If-None-Match",
                "If-Match",
                "If-Range",
                "If-Modified-Since",
                "If-Unmodified-Since",
            ],
            expose_headers=[
                "Content-Range",
                "Content-Length",
                "Content-Type",
                "Content-Encoding",
                "ETag",
                "Content-Disposition",
                "Accept-Ranges",
                "Warning",
            ],
            max_age=86400,
        ),
    ]
    # No redirect for a trailing slash or a %2F: Starlette builds its Location
    # from the Host header, which the client chooses (an open redirect's shape).
    router = Router(served, redirect_slashes=False)
    dicomweb: list[BaseRoute] = [Mount(base_path, app=router)] if base_path else router.routes
    app = _Application(
        context,
        base_path,
        routes=pages(context, base_path, viewer, dicomweb),
        middleware=middleware,
        exception_handlers={
            DicomwebArchiveError: error_response,
            HTTPException: error_response,
            Exception: error_response,
        },
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    return app
