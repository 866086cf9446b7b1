"""The OHIF viewer at ``/viewer``, served from its build beside the archive.

OHIF's build loads its bundles, ``app-config.js`` and assets from the origin's
root (its webpack public path is ``/``), so its files are answered at the root
(after every other route) and its routes (``/viewer?StudyInstanceUIDs=…``,
``/notfoundstudy``…) fall back to its ``index.html``, as a single-page
application needs.  ``app-config.js`` is generated for this server
(:mod:`dicomweb_archive.viewer.config`).  Without a build, ``/viewer`` says how
to get one.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from dicomweb_archive import tags
from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.server.context import Context
from dicomweb_archive.store.index import Level, Query
from dicomweb_archive.types import first_value
from dicomweb_archive.viewer.config import (
    PROGRESSIVE_URL,
    VIEWER_ROUTE,
    app_config_script,
    progressive_extension,
)
from dicomweb_archive.viewer.install import INSTALL_HINT

#: Media types the browser insists on (module scripts, streamed WebAssembly),
#: whatever the platform's MIME table says.
MEDIA_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
    ".html": "text/html; charset=utf-8",
}
#: OHIF's deployment guide: cross-origin isolation, so the viewer may use
#: SharedArrayBuffer (every resource it loads is same-origin or sends CORP).
#: On every file: the viewer's web workers are refused without them.
ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}
#: For what is not named by its content (index.html, app-config.js).
FRESH = {**ISOLATION, "Cache-Control": "no-cache"}
#: Instances sampled for HTJ2K alternates (any one suffices: the others load whole).
SAMPLED_INSTANCES = 8

MISSING_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Viewer not installed</title>
<link rel="stylesheet" href="/browser/browser.css"></head>
<body><main class="notice">
<h1>The viewer is not installed</h1>
<p>This server has no OHIF viewer to show. To get it:</p>
<ol><li><code>dwa viewer install</code> (fetches npm's <code>@ohif/app</code>; needs npm)</li>
<li><code>dwa serve ARCHIVE --viewer auto</code></li></ol>
<p>{detail}</p>
<p><a href="/">Back to the study browser</a></p>
</main></body></html>
"""


def has_htj2k_alternates(context: Context) -> bool:
    """Whether the archive holds HTJ2K alternates (``dwa transcode``), by a sample."""
    rows = context.search_index().search(Level.INSTANCE, Query(limit=SAMPLED_INSTANCES))
    for row in rows:
        key = (
            str(first_value(row, tags.StudyInstanceUID, "")),
            str(first_value(row, tags.SeriesInstanceUID, "")),
            str(first_value(row, tags.SOPInstanceUID, "")),
        )
        if all(key) and context.archive.exists(paths.htj2k_frame_path(*key, 1)):
            return True
    return False


def _file(path: Path, headers: dict[str, str] = ISOLATION) -> FileResponse:
    return FileResponse(path, media_type=MEDIA_TYPES.get(path.suffix), headers=headers)


def viewer_routes(context: Context, dist: Path | None, dicomweb_root: str) -> list[BaseRoute]:
    """The viewer's routes over the build in ``dist`` (``None``: the missing page)."""
    if dist is None:
        detail = html.escape(f"Or: {INSTALL_HINT}.")

        def missing(request: Request) -> Response:
            return HTMLResponse(MISSING_PAGE.format(detail=detail), status_code=404)

        return [
            Route(VIEWER_ROUTE, missing),
            Route(VIEWER_ROUTE + "/{rest:path}", missing),
        ]
    dist = dist.resolve()
    progressive: list[bool] = []

    def index(request: Request) -> Response:
        return _file(dist / "index.html", FRESH)

    def config(request: Request) -> Response:
        if not progressive:  # once: alternates come from an offline `dwa transcode`
            progressive.append(has_htj2k_alternates(context))
        script = app_config_script(dicomweb_root, progressive=progressive[0])
        return Response(script, media_type=MEDIA_TYPES[".js"], headers=FRESH)

    def extension(request: Request) -> Response:
        return Response(progressive_extension(), media_type=MEDIA_TYPES[".mjs"], headers=FRESH)

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        path = (dist / name).resolve()
        if path.is_relative_to(dist) and path.is_file():
            return _file(path)
        # A route of the application (no file name extension): its index.html.
        if "." not in name.rsplit("/", 1)[-1]:
            return index(request)
        raise ResourceNotFoundError(f"no resource /{name}")

    return [
        Route("/app-config.js", config),
        Route(PROGRESSIVE_URL, extension),
        Route(VIEWER_ROUTE, index),
        Route(VIEWER_ROUTE + "/{rest:path}", index),
        Route("/{name:path}", asset),
    ]
