"""Open a store by URL: a local path or ``file://`` URL, or an object store.

``s3://bucket/prefix`` (and any other writable fsspec file system, such as
``memory://``) opens an :class:`~dicomweb_archive.store.objectstore.ObjectStore`;
callers only ever see a :class:`~dicomweb_archive.store.base.Store`.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit

from dicomweb_archive.errors import UnsupportedStoreError
from dicomweb_archive.store.base import Store
from dicomweb_archive.store.directory import DirectoryStore

#: ``scheme://`` at the start of a location; one letter is a Windows drive.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
#: Schemes of read-only or non-storage fsspec file systems.
_NOT_STORES = frozenset({"http", "https", "ftp", "zip", "tar", "github", "git", "data"})
#: The package each object store needs, and the extra that installs it.
_PACKAGES = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", ""), "gcs": ("gcsfs", "")}


def is_url(location: str) -> bool:
    """Whether ``location`` names a store by URL (``s3://…``, ``file://…``), not a path."""
    return _SCHEME.match(location) is not None and "://" in location


def open_store(location: str | os.PathLike[str] | Store) -> Store:
    """The store at ``location``: a folder path, a ``file://`` URL or an object store URL.

    A scheme with no usable backend is refused with :class:`UnsupportedStoreError`
    naming it, never taken for a local folder.
    """
    if not isinstance(location, str | os.PathLike):  # a Store (a costly check: a protocol)
        return location
    text = os.fspath(location)
    found = _SCHEME.match(text)
    if found is None:
        return DirectoryStore(text)
    scheme = found.group(1).lower()
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise UnsupportedStoreError(f"{text}: file:// URLs must name a local path")
        return DirectoryStore(unquote(parts.path))
    return _object_store(text, scheme)


def _object_store(text: str, scheme: str) -> Store:
    import fsspec

    if scheme in _NOT_STORES or scheme not in fsspec.available_protocols():
        raise UnsupportedStoreError(
            f"{text}: {scheme}:// archives are not supported; give a local folder or s3://"
        )
    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError:
        package, extra = _PACKAGES.get(scheme, (f"the fsspec backend for {scheme}://", ""))
        how = f"pip install 'dicomweb-archive[{extra}]'" if extra else f"pip install {package}"
        raise UnsupportedStoreError(
            f"{text}: {scheme}:// archives need {package}, which is not installed ({how})"
        ) from None
    from dicomweb_archive.store.objectstore import ObjectStore

    return ObjectStore(text)
