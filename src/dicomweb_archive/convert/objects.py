"""Inputs in an object store: ``s3://bucket/prefix`` names every object under it.

Through fsspec (``s3fs`` for ``s3://``, in the ``s3`` extra), with the standard
AWS configuration and environment (``AWS_ENDPOINT_URL`` included).  A prefix is
listed recursively in key order, like a folder; each object is read whole, in
one streamed GET, into a spooled file (a P10 parse seeks), by the worker that
converts it.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO

from dicomweb_archive.errors import InvalidInputError

#: Objects smaller than this are read into memory, larger ones spooled to disk.
SPOOL_MAX = 64 * 1024 * 1024
_READ = 1024 * 1024


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        import fsspec

        # Listings are never cached: the objects may change between two runs.
        return fsspec.core.url_to_fs(url, use_listings_cache=False)  # type: ignore[no-any-return]
    except ImportError as exc:
        scheme = url.partition(":")[0]
        raise InvalidInputError(
            f"{scheme}:// inputs need the fsspec file system for {scheme}://, which is not "
            f"installed (pip install 'dicomweb-archive[s3]' for s3://): {exc}"
        ) from exc
    except ValueError as exc:  # an unknown protocol
        raise InvalidInputError(str(exc)) from exc


def list_objects(url: str) -> list[str]:
    """The URLs of the objects at ``url``: itself if it is one, else every one under it.

    Raises :class:`InvalidInputError` or :class:`OSError` (``FileNotFoundError``
    when there is nothing there).
    """
    fs, path = _filesystem(url)
    if fs.isfile(path):
        return [url]
    keys = sorted(key for key in fs.find(path) if not key.endswith("/"))
    if not keys:
        raise FileNotFoundError(url)
    return [fs.unstrip_protocol(key) for key in keys]


@contextlib.contextmanager
def open_object(url: str) -> Iterator[BinaryIO]:
    """The object at ``url``, read whole into a seekable spooled file."""
    fs, path = _filesystem(url)
    with (
        fs.open(path, "rb", block_size=8 * _READ) as source,
        tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX) as spool,
    ):
        shutil.copyfileobj(source, spool, _READ)
        spool.seek(0)
        yield spool  # type: ignore[misc]
