"""The S3 requests :class:`~dicomweb_archive.store.objectstore.ObjectStore` makes itself.

Each is exactly one request (s3fs' conveniences add a size query before a read
and a listing after a missing key), made through the s3fs file system's client
and event loop, so credentials, endpoint (``AWS_ENDPOINT_URL``), retries and
connection pooling are s3fs'.  ``remote`` is ``bucket/key``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fsspec.asyn import sync

from dicomweb_archive.errors import StoreError
from dicomweb_archive.store.base import Entry, not_found

#: What the answer to a GET was: its headers (``ETag``, ``ContentRange``…) and body.
Answer = tuple[dict[str, Any], bytes]


def is_s3(fs: Any) -> bool:
    """Whether ``fs`` is s3fs' file system (or another speaking S3 through it)."""
    return hasattr(fs, "_call_s3")


def _call(fs: Any, method: str, remote: str, **request: Any) -> Any:
    bucket, _, key = remote.partition("/")
    return sync(fs.loop, fs._call_s3, method, Bucket=bucket, Key=key, **request)


def _error_code(exc: BaseException) -> str:
    """The S3 error code behind an s3fs error (``304``, ``PreconditionFailed``…)."""
    response = getattr(exc.__cause__, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def head(fs: Any, remote: str) -> dict[str, Any] | None:
    """Size and ETag of the object (``size``, ``ETag``); None when there is none."""
    try:
        answer = _call(fs, "head_object", remote)
    except FileNotFoundError:
        return None
    return {"size": answer["ContentLength"], "ETag": answer.get("ETag", "")}


def get(fs: Any, remote: str, path: str, **request: str) -> Answer | None:
    """GetObject (``Range``, ``IfMatch``, ``IfNoneMatch`` in ``request``); None on 304.

    ``path`` names the object in errors.  A range past the end of the object
    answers no bytes; a changed object under ``IfMatch`` is a :class:`StoreError`.
    """
    bucket, _, key = remote.partition("/")

    async def call() -> Answer:
        answer = await fs._call_s3("get_object", Bucket=bucket, Key=key, **request)
        body = await answer.pop("Body").read()
        return answer, body

    try:
        answer: Answer = sync(fs.loop, call)
    except FileNotFoundError:
        raise not_found(path) from None
    except OSError as exc:
        code = _error_code(exc)
        if code == "304":
            return None
        if code in ("PreconditionFailed", "412"):
            raise StoreError(f"{path} changed while it was read") from exc
        if code == "InvalidRange":
            return {}, b""
        raise
    return answer


def exists(fs: Any, remote: str) -> bool:
    """Whether an object or a folder is at ``remote``: one listing answers both."""
    bucket, _, key = remote.partition("/")
    found = sync(fs.loop, fs._call_s3, "list_objects_v2", Bucket=bucket, Prefix=key, Delimiter="/")
    folder = f"{key}/"
    return any(item["Key"] == key for item in found.get("Contents", [])) or any(
        item["Prefix"] == folder for item in found.get("CommonPrefixes", [])
    )


def _pages(fs: Any, remote: str, **request: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The answers of ListObjectsV2 under the folder ``remote`` (a request per
    1,000 keys), each with the prefix its keys start with."""
    bucket, _, key = remote.partition("/")
    prefix = f"{key}/" if key else ""
    request = {"Bucket": bucket, "Prefix": prefix, **request}
    while True:
        page = sync(fs.loop, fs._call_s3, "list_objects_v2", **request)
        yield prefix, page
        if not page.get("IsTruncated"):
            return
        request["ContinuationToken"] = page["NextContinuationToken"]


def tree(fs: Any, remote: str) -> dict[str, dict[str, Any]]:
    """Every object under the folder ``remote``, by key below it (``size``,
    ``ETag``, as :func:`head` gives them)."""
    return {
        item["Key"][len(prefix) :]: {"size": item["Size"], "ETag": item.get("ETag", "")}
        for prefix, page in _pages(fs, remote)
        for item in page.get("Contents", [])
    }


def children(fs: Any, remote: str) -> list[Entry]:
    """The files and folders in the folder ``remote``."""
    entries: set[Entry] = set()
    for prefix, page in _pages(fs, remote, Delimiter="/"):
        for item in page.get("Contents", []):
            entries.add(Entry(item["Key"][len(prefix) :], False))
        for item in page.get("CommonPrefixes", []):
            entries.add(Entry(item["Prefix"][len(prefix) :].rstrip("/"), True))
    return sorted(entries)
