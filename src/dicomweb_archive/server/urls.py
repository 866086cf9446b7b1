"""The absolute URLs a live server writes into its answers (RetrieveURL, BulkDataURI).

The static archive holds relative URIs (any host can serve it); a server can
do better and answer absolute ones, which every client resolves alike
(dicomweb-client's ``retrieve_bulkdata`` takes a BulkDataURI as it is).

Where the service is: the configured ``--base-url`` when given (behind a
proxy, the only trustworthy answer).  Otherwise the request's own scheme and
``Host``, as uvicorn reports them, with the port the request came in on when
the ``Host`` names none: a client that sends a false ``Host`` gets
URLs naming the host it claimed, in its own answer only; nothing built from
it is kept or shared between requests, and a ``Host`` that is not a plain
``host[:port]`` is replaced by the address the connection came in on.
"""

from __future__ import annotations

import re

import orjson
from starlette.requests import Request

from dicomweb_archive import tags
from dicomweb_archive.model.paths import ResourcePath, ResourceType
from dicomweb_archive.types import JSONDataset, first_value
from dicomweb_archive.uids import is_valid_uid

_LEVEL_UIDS = (tags.StudyInstanceUID, tags.SeriesInstanceUID, tags.SOPInstanceUID)

#: A DNS name, an IPv4 address or a bracketed IPv6 address, and a port.
_PORT = re.compile(r":[0-9]+$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def service_root(request: Request, base_url: str | None = None) -> str:
    """The URL of the service root (``…/dicomweb``), without a trailing slash."""
    if base_url:
        return base_url.rstrip("/")
    host = request.headers.get("host", "")
    server = request.scope.get("server") or ("localhost", None)
    if not _HOST.fullmatch(host):
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    elif _PORT.search(host) is None and server[1] not in (None, _DEFAULT_PORTS[request.url.scheme]):
        # A Host without its port (dicomweb-client sends those): the port the
        # request came in on, so the URLs reach this server again.
        host = f"{host}:{server[1]}"
    return f"{request.url.scheme}://{host}{request.scope.get('root_path', '')}"


def absolute_retrieve_urls(rows: list[JSONDataset], level: ResourceType, root: str) -> None:
    """QIDO-RS rows given the absolute RetrieveURL of the study, series or instance each is.

    Stored rows hold URLs relative to where the static archive keeps them
    (``series/{se}`` below a study), which a top-level ``/series`` search
    would resolve to nothing.
    """
    levels = (ResourceType.STUDY, ResourceType.SERIES, ResourceType.INSTANCE)[: level.depth]
    for row in rows:
        if tags.RetrieveURL not in row:
            continue
        uids = [first_value(row, tag) for tag in _LEVEL_UIDS[: level.depth]]
        if not all(isinstance(uid, str) and uid for uid in uids):
            continue
        if not all(is_valid_uid(str(uid)) for uid in uids):
            ResourcePath(level, *map(str, uids))  # raises as any path naming it
        # ResourcePath's own text, built without one (a page holds many rows).
        path = "/".join(f"{one.segment}/{uid}" for one, uid in zip(levels, uids, strict=True))
        row[tags.RetrieveURL] = {"vr": "UR", "Value": [f"{root}/{path}"]}


def absolute_bulkdata_uris(document: bytes, study_url: str) -> bytes:
    """A stored metadata document with its study-relative BulkDataURIs made absolute.

    Stored documents are compact JSON whose BulkDataURIs are relative to the
    study (``bulkdata/…``, ``series/…/frames``): one substitution, no parse.
    """
    prefix = orjson.dumps(study_url + "/")[:-1]  # the quoted URL, JSON-escaped, still open
    return document.replace(b'"BulkDataURI":"', b'"BulkDataURI":' + prefix)
