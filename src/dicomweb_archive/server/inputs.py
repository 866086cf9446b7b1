"""The stored files a generated answer is made from, measured: its validators.

A retrieve of whole instances is not stored anywhere: each P10 file is
regenerated from its instance's ``metadata.gz``, ``info.json.gz`` and frames
(bulk data is content-addressed: its name, in the metadata, is its content),
listed and ordered by the study's or series' ``metadata.gz``, and named, in a
ZIP, by the study's QIDO documents.  Its bytes are a function of those files
and of how they are made into P10 (transfer syntax, de-identification, the
code of this product, the versions of Python and of the libraries that encode
and decode).

:class:`Inputs` measures each file (size and version, one ``stat``; for a
packed study, the ZIP's) *before* it is read, so the answer's strong
``ETag`` is known without making any P10 file, and ``Last-Modified`` is the
newest of them.  While the answer is made, :meth:`Inputs.check` looks at
each file again once it is read: a file replaced in between (a STOW-RS or
``dwa update`` of an instance) no longer has its measured version, and the
answer is made again or broken off
(:class:`~dicomweb_archive.server.joined.ChangedWhileSent`) rather than sent
under a validator that names other bytes.  A file replaced after its check
changes nothing: the bytes read are the measured ones, those the validator
names (a STOW-RS into a study while it is downloaded leaves the download whole).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import platform
from collections.abc import Iterable
from pathlib import Path

from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.server.joined import ChangedWhileSent
from dicomweb_archive.server.responses import entity_tag
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import Stat
from dicomweb_archive.version import __version__

#: Libraries whose version can change the bytes of a regenerated file:
#: pydicom writes what the fast writer leaves, and transcodes and
#: de-identifies; imagecodecs and numpy decode compressed frames.
_LIBRARIES = ("pydicom", "imagecodecs", "numpy")


def _source_digest(package: Path) -> str:
    """A digest of the package's code (every ``.py`` file, by name and content).

    The version number alone does not say which code makes the files: it is
    not changed by every change of the writers.  Any change of the code
    changes the digest (a miss after an upgrade, never a stale hit).
    """
    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def product() -> str:
    """What makes the P10 files: this product's code and version, Python's
    (``zipfile``, ``gzip``) and its libraries' versions."""
    code = _source_digest(Path(__file__).resolve().parents[1])
    versions = [f"dicomweb-archive/{__version__}+{code}", f"python/{platform.python_version()}"]
    for name in _LIBRARIES:
        try:
            versions.append(f"{name}/{importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name}/none")
    return " ".join(versions)


class Inputs:
    """Stored files by archive path, each measured once, in the order first measured."""

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self._measured: dict[str, Stat | None] = {}
        #: The last folder listed to measure files in it, and what it held.
        self._listed: tuple[str, dict[str, Stat] | None] | None = None

    def _stat(self, path: str) -> Stat | None:
        try:
            return self.archive.stat(path)
        except ResourceNotFoundError:
            return None

    def measure(self, *paths: str) -> None:
        """Measure ``paths`` now (before they are read); a path measured before is kept."""
        for path in paths:
            if path not in self._measured:
                self._measured[path] = self._stat(path)

    def measure_folder(self, folder: str, paths: Iterable[str]) -> None:
        """:meth:`measure` of ``paths``, files under ``folder``: from one listing
        of it where the store makes one (an object store: a request for the
        folder instead of one per file), kept for its next paths."""
        if self._listed is None or self._listed[0] != folder:
            self._listed = folder, self.archive.stat_tree(folder)
        tree = self._listed[1]
        if tree is None:
            self.measure(*paths)
            return
        for path in paths:
            if path not in self._measured:
                self._measured[path] = tree.get(path)

    def tag(self, *representation: str) -> str:
        """The validator of an answer made of these files as ``representation`` says."""
        files = (f"{path}={_version(stat)}" for path, stat in self._measured.items())
        return entity_tag(product(), *representation, *files)

    @property
    def newest(self) -> float | None:
        """When the newest file was written; None when a file's time is not known."""
        times = [None if stat is None else stat.modified for stat in self._measured.values()]
        if not times or any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)

    def check(self, paths: Iterable[str]) -> None:
        """Raise :class:`ChangedWhileSent` if one of ``paths``, read since it was
        measured, is no longer as measured."""
        for path in paths:
            self._compare(path, self._stat(path))

    def check_folder(self, folder: str, paths: Iterable[str]) -> None:
        """:meth:`check` of ``paths``, files under ``folder``: from one listing
        of it where the store makes one (see :meth:`measure_folder`)."""
        tree = self.archive.stat_tree(folder)
        if tree is None:
            self.check(paths)
            return
        for path in paths:
            self._compare(path, tree.get(path))

    def _compare(self, path: str, stat: Stat | None) -> None:
        if _version(stat) != _version(self._measured[path]):
            raise ChangedWhileSent(f"{path} changed while the answer was made")


def _version(stat: Stat | None) -> str:
    """A measured file's version; ``-`` for a missing file."""
    return "-" if stat is None else stat.version
