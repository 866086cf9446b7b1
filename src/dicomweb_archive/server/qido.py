"""QIDO-RS: search for studies, series and instances from the SQLite index."""

from __future__ import annotations

import orjson
from pydicom.datadict import dictionary_VR, tag_for_keyword
from starlette.requests import Request
from starlette.responses import Response

from dicomweb_archive.media import DICOM_JSON
from dicomweb_archive.model.matching import InvalidQueryError
from dicomweb_archive.store.index import Level, QidoIndex, Query

#: Most rows one answer holds; a larger ``limit`` is cut to it.
MAX_RESULTS = 10_000
_CONTROL = {
    "limit",
    "offset",
    "includefield",
    "fuzzymatching",
    "emptyvaluematching",
    "multiplevaluematching",
}


def _path(key: str) -> tuple[str, str]:
    """The tag path (8-hex tags joined by ``.``) and leaf VR of a query key."""
    parts = [_tag(part) for part in key.split(".")]
    for tag, vr in parts[:-1]:
        if vr != "SQ":
            raise InvalidQueryError(f"{key!r}: {tag} is not a sequence")
    return ".".join(tag for tag, _ in parts), parts[-1][1]


def _tag(key: str) -> tuple[str, str]:
    """The 8-hex tag and VR of one attribute (keyword or tag)."""
    upper = key.upper()
    if len(upper) == 8 and all(c in "0123456789ABCDEF" for c in upper):
        tag = int(upper, 16)
    else:
        found = tag_for_keyword(key)
        if found is None:
            raise InvalidQueryError(f"{key!r} is neither an attribute keyword nor a tag")
        tag = found
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        vr = "UN"
    return f"{tag:08X}", vr.split(" or ")[0]


def _int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise InvalidQueryError(f"{name}={value!r} is not a number") from exc
    if number < 0:
        raise InvalidQueryError(f"{name}={value!r} is negative")
    return number


def parse_query(request: Request) -> tuple[Query, list[str]]:
    """The query of a QIDO-RS request, and the warnings its answer must carry."""
    query = Query(limit=MAX_RESULTS)
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


def search(index: QidoIndex, level: Level, request: Request) -> Response:
    query, warnings = parse_query(request)
    params = request.path_params
    query.study = params.get("study")
    query.series = params.get("series")
    rows = [] if query.limit == 0 else index.search(level, query)
    headers = {"Warning": ", ".join(warnings)} if warnings else {}
    return Response(orjson.dumps(rows), media_type=DICOM_JSON, headers=headers)
