"""The study browser at ``/``: one HTML page, its script and style sheet (``static/``).

The page asks the DICOMweb service itself (QIDO-RS, thumbnails, ZIP retrieve)
with relative URLs, so it works wherever the server is mounted and under the
same CORS and token rules as any other client.  What DICOMweb has no resource
for, the stored size of a study and of each of its series, it reads from
``/browser/sizes/{study}``.  ``{base}`` and ``{base}/``
lead to it, so the service's root is not a bare 404.
"""

from __future__ import annotations

import html
from importlib import resources

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dicomweb_archive import uids
from dicomweb_archive.errors import InvalidUIDError, ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import files_under

#: The page's own files, by the name they are served under (``/browser/{name}``).
ASSETS = {
    "browser.js": "text/javascript; charset=utf-8",
    "browser.css": "text/css; charset=utf-8",
}
STATIC = resources.files(__package__) / "static"


def page(dicomweb_root: str, *, viewer: bool) -> bytes:
    """``index.html`` with the service's root (relative to ``/``) and the viewer's state."""
    text = (STATIC / "index.html").read_text(encoding="utf-8")
    text = text.replace("__DICOMWEB_ROOT__", html.escape(dicomweb_root))
    return text.replace("__VIEWER__", "installed" if viewer else "missing").encode()


def _up(base_path: str, *, slash: bool) -> str:
    """The relative reference from ``{base_path}`` (or ``{base_path}/``) to ``/``."""
    depth = base_path.strip("/").count("/") + 1
    steps = depth if slash else depth - 1
    return "../" * steps or "./"


def stored_sizes(archive: Archive, study: str) -> dict[str, object]:
    """Bytes stored for the study, and for each of its series (derived documents included)."""
    if not archive.has_study(study):
        raise ResourceNotFoundError(f"no study {study}")
    within = f"{paths.study_dir(study)}/series/"
    total = 0
    series: dict[str, int] = {}
    for path in files_under(archive, paths.study_dir(study)):
        size = archive.stat(path).size
        total += size
        uid, slash, _ = path.removeprefix(within).partition("/")
        if path.startswith(within) and slash:
            series[uid] = series.get(uid, 0) + size
    return {"study": total, "series": series}


def browser_routes(archive: Archive, base_path: str, *, viewer: bool) -> list[BaseRoute]:
    """``/``, its assets, the stored sizes and the redirects from the service's root."""
    body = page(base_path.lstrip("/") or ".", viewer=viewer)

    def index(request: Request) -> Response:
        return Response(body, media_type="text/html; charset=utf-8")

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            raise ResourceNotFoundError(f"no resource /browser/{name}")
        return Response((STATIC / name).read_bytes(), media_type=ASSETS[name])

    def sizes(request: Request) -> Response:
        study = request.path_params["study"]
        if not uids.is_valid_uid(study):
            raise InvalidUIDError(f"{study!r} is not a UID")
        return JSONResponse(stored_sizes(archive, study))

    routes: list[BaseRoute] = [
        Route("/", index),
        Route("/browser/{name}", asset),
        Route("/browser/sizes/{study}", sizes),
    ]
    if base_path.strip("/"):
        # Relative Locations: never built from the Host header the client chose.
        for slash in (False, True):
            target = _up(base_path, slash=slash)

            def to_browser(request: Request, target: str = target) -> Response:
                return RedirectResponse(target, status_code=303)

            routes.append(Route(base_path.rstrip("/") + ("/" if slash else ""), to_browser))
    return routes
