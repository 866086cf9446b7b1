"""The study browser at ``/``: one HTML page, its script and style sheet (``static/``).

The page asks the DICOMweb service itself (QIDO-RS, thumbnails, ZIP retrieve)
with relative URLs, so it works wherever the server is mounted and under the
same CORS and token rules as any other client.  ``{base}`` and ``{base}/``
lead to it, so the service's root is not a bare 404.
"""

from __future__ import annotations

import html
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dicomweb_archive.errors import ResourceNotFoundError

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


def browser_routes(base_path: str, *, viewer: bool) -> list[BaseRoute]:
    """``/``, its assets and the redirects from the service's root."""
    body = page(base_path.lstrip("/") or ".", viewer=viewer)

    def index(request: Request) -> Response:
        return Response(body, media_type="text/html; charset=utf-8")

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            raise ResourceNotFoundError(f"no resource /browser/{name}")
        return Response((STATIC / name).read_bytes(), media_type=ASSETS[name])

    routes: list[BaseRoute] = [Route("/", index), Route("/browser/{name}", asset)]
    if base_path.strip("/"):
        # Relative Locations: never built from the Host header the client chose.
        for slash in (False, True):
            target = _up(base_path, slash=slash)

            def to_browser(request: Request, target: str = target) -> Response:
                return RedirectResponse(target, status_code=303)

            routes.append(Route(base_path.rstrip("/") + ("/" if slash else ""), to_browser))
    return routes
