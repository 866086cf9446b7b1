"""Open a store by URL: a local path or ``file://`` URL today, other schemes later.

An object-store backend plugs in here; callers only ever see a
:class:`~dicomweb_archive.store.base.Store`.
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


def open_store(location: str | os.PathLike[str] | Store) -> Store:
    """The store at ``location``: a folder path or a ``file://`` URL.

    Any other scheme (``s3://``, ``gs://``…) is refused with
    :class:`UnsupportedStoreError` naming it, never taken for a local folder.
    """
    if not isinstance(location, str | os.PathLike):  # a Store (a costly check: a protocol)
        return location
    text = os.fspath(location)
    found = _SCHEME.match(text)
    if found is None:
        return DirectoryStore(text)
    scheme = found.group(1).lower()
    if scheme != "file":
        raise UnsupportedStoreError(
            f"{text}: {scheme}:// archives are not supported yet; give a local folder"
        )
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise UnsupportedStoreError(f"{text}: file:// URLs must name a local path")
    return DirectoryStore(unquote(parts.path))
