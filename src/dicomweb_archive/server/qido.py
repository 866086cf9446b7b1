"""QIDO-RS: search for studies, series and instances from the SQLite index.

An answer holds at most ``limit`` rows (:data:`DEFAULT_LIMIT` when the query
names none, never more than :data:`MAX_RESULTS`); when more rows match, it
carries a 299 warning naming the ``offset`` that asks for the next page.
A key or value that cannot be matched answers 400 with the reason.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from dicomweb_archive.media import DICOM_JSON
from dicomweb_archive.model.attributes import attribute_tag
from dicomweb_archive.model.matching import InvalidQueryError
from dicomweb_archive.model.paths import ResourcePath, ResourceType
from dicomweb_archive.numerals import parse_unsigned
from dicomweb_archive.server.context import Context
from dicomweb_archive.server.urls import absolute_retrieve_urls, service_root
from dicomweb_archive.store.index import Level, Query

#: Most rows one answer holds; a larger ``limit`` is cut to it.
MAX_RESULTS = 10_000
#: Rows per answer when the query gives no ``limit``.
DEFAULT_LIMIT = 1_000
_BOOLEAN = {"true", "false"}
_MATCHING_OPTIONS = {"fuzzymatching", "emptyvaluematching", "multiplevaluematching"}
_TYPES = {
    Level.STUDY: ResourceType.STUDY,
    Level.SERIES: ResourceType.SERIES,
    Level.INSTANCE: ResourceType.INSTANCE,
}
_CONTROL = {"limit", "offset", "includefield", *_MATCHING_OPTIONS}


def _path(key: str) -> tuple[str, str]:
    """The tag path (8-hex tags joined by ``.``) and leaf VR of a query key."""
    parts = [attribute_tag(part) for part in key.split(".")]
    for tag, vr in parts[:-1]:
        if vr != "SQ":
            raise InvalidQueryError(f"{key!r}: {tag} is not a sequence")
    return ".".join(tag for tag, _ in parts), parts[-1][1]


def _int(value: str, name: str) -> int:
    try:
        return parse_unsigned(value)
    except ValueError as exc:
        raise InvalidQueryError(f"{name}={value!r} is not a number of digits 0-9") from exc


def parse_query(request: Request) -> tuple[Query, list[str]]:
    """The query of a QIDO-RS request, and the warnings its answer must carry."""
    query = Query(limit=DEFAULT_LIMIT)
    warnings = []
    include: set[str] | None = set()
    for key, value in request.query_params.multi_items():
        if key == "limit":
            query.limit = min(_int(value, key), MAX_RESULTS)
        elif key == "offset":
            query.offset = _int(value, key)
        elif key == "includefield":
            for item in value.split(","):
                if item.strip().lower() == "all":
                    include = None
                elif item.strip() and include is not None:
                    # A path returns its whole top-level sequence.
                    include.add(_path(item.strip())[0].split(".")[0])
        elif key in _MATCHING_OPTIONS and value.lower() not in _BOOLEAN:
            raise InvalidQueryError(f"{key}={value!r}: the value is true or false")
        elif key == "fuzzymatching":
            if value.lower() == "true":
                warnings.append(
                    '299 dicomweb-archive "The fuzzymatching parameter is not supported. '
                    'Only literal matching has been performed."'
                )
        elif key in _CONTROL:
            continue
        else:
            tag, vr = _path(key)
            query.match.append((tag, vr, value))
    query.include = include
    return query, warnings


def search(context: Context, level: Level, request: Request) -> Response:
    index = context.search_index()
    query, warnings = parse_query(request)
    params = request.path_params
    query.study = params.get("study")
    query.series = params.get("series")
    limit = query.limit or 0
    # One row more than asked for tells whether the answer is cut.
    query.limit = limit + 1
    rows = index.search(level, query) if limit else []
    if len(rows) > limit:
        del rows[limit:]
        warnings.append(
            '299 dicomweb-archive "The number of results exceeded the limit of '
            f'{limit}. Additional results can be requested with offset={query.offset + limit}."'
        )
    absolute_retrieve_urls(rows, _TYPES[level], service_root(request, context.base_url))
    headers = {"Warning": ", ".join(warnings)} if warnings else {}
    return Response(orjson.dumps(rows), media_type=DICOM_JSON, headers=headers)


def search_for_studies(context: Context, request: Request, resource: ResourcePath) -> Response:
    return search(context, Level.STUDY, request)


def search_for_series(context: Context, request: Request, resource: ResourcePath) -> Response:
    return search(context, Level.SERIES, request)


def search_for_instances(context: Context, request: Request, resource: ResourcePath) -> Response:
    return search(context, Level.INSTANCE, request)
