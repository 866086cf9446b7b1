"""Extension folders: writing third-party files beside a study, series or instance.

An extension folder ``_{vendor}_{name}/`` is part of its study's folder, so it
travels with everything that moves a study whole: packing and unpacking keep
it (a study ZIP holds every file of the folder), and re-converting an instance
leaves it alone (a conversion only rewrites the files it makes).  Files are
written atomically under the study's shared lock (a packed study is unpacked
first, as for a conversion), after checking that their level exists and that no
symbolic link is on the way out of the archive.

Each write rewrites the study's list of extension folders,
``studies/{study}/extensions.json.gz`` (served at ``/studies/{study}/extensions``),
from what the folders hold; its ``path`` values are relative to the study's URL.
A refresh of the study's documents rewrites an existing list too
(:func:`refresh_list`), so folders that went with their instance or series
leave it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from dicomweb_archive import uids
from dicomweb_archive.errors import InvalidInputError, ResourceNotFoundError
from dicomweb_archive.model import extensions, paths
from dicomweb_archive.model.paths import ResourcePath, ResourceType
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import CHUNK, ReadableStore, Store, folders
from dicomweb_archive.store.session import writing_study

INDEX_VERSION = 1
_LEVEL_NAMES = {
    ResourceType.STUDY: "study",
    ResourceType.SERIES: "series",
    ResourceType.INSTANCE: "instance",
}


@dataclass(frozen=True)
class AttachedFile:
    """One file written into an extension folder."""

    path: ResourcePath
    size: int
    #: Whether there was no such file before.
    created: bool
    #: Whether the stored bytes changed (False: the same bytes were there).
    changed: bool

    @property
    def content_type(self) -> str:
        return extensions.content_type(str(self.path.extension_file))


def extensions_lock(study: str) -> str:
    """The lock ordering writers of one study's extension folders (and their list)."""
    return f"extensions-{study}"


def attach(
    archive: Archive, where: ResourcePath, folder: str, files: Iterable[tuple[str, IO[bytes]]]
) -> list[AttachedFile]:
    """Write ``files`` (name, readable binary) into ``where``'s extension ``folder``.

    ``where`` is a study, series or instance of the archive.  Every name is
    checked before anything is written; the study's list of extension folders
    is rewritten once at the end.
    """
    targets = [(where.extension_path(folder, name), source) for name, source in files]
    if not targets:
        raise InvalidInputError("no file to attach")
    study = str(where.study_instance_uid)
    attached = []
    with writing_study(archive, study) as store, store.lock(extensions_lock(study)):
        _check_level(store, where)
        for target, source in targets:
            _check_not_linked(store, os.path.dirname(target.file))
            created = not store.exists(target.file)
            with store.temporary_file() as tmp:
                shutil.copyfileobj(source, tmp.handle, CHUNK)
                size = tmp.handle.tell()
                changed = store.commit(tmp, target.file)
            attached.append(AttachedFile(target, size, created, changed))
        write_list(store, study)
    return attached


def _check_level(store: ReadableStore, where: ResourcePath) -> None:
    """The study, series or instance must be in the archive (an instance committed)."""
    if where.type not in _LEVEL_NAMES or where.is_collection:
        raise InvalidInputError("extension folders belong to a study, series or instance")
    level = where.with_suffix(None)
    present = (
        store.exists(level.metadata().file)
        if where.type is ResourceType.INSTANCE
        else store.exists(level.file)
    )
    if not present:
        raise ResourceNotFoundError(f"{level} is not in the archive")


def _check_not_linked(store: Store, folder: str) -> None:
    """Refuse to write through a symbolic link planted in the archive's folders.

    Reads never follow links (see :mod:`~dicomweb_archive.store.directory`); a
    write through a linked folder would land outside the archive.
    """
    local = store.local_path(folder)
    if local is None:
        return
    root = os.path.realpath(store.local_path("") or ".")
    if os.path.realpath(local) != os.path.normpath(os.path.join(root, folder)):
        raise InvalidInputError(f"{folder}: reached through a symbolic link, not written")


# -- the list of a study's extension folders ------------------------------------------


def refresh_list(store: Store, study: str) -> bool:
    """Rewrite the study's list when it has one (the caller writes the study)."""
    if not store.exists(paths.study_extensions(study)):
        return False
    with store.lock(extensions_lock(study)):
        return write_list(store, study)


def write_list(store: Store, study: str) -> bool:
    """Rewrite ``extensions.json.gz`` of ``study`` from its folders (none: removed)."""
    found = list_folders(store, study)
    target = paths.study_extensions(study)
    if not found:
        return store.remove(target)
    document = {
        "format": extensions.INDEX_FORMAT,
        "version": INDEX_VERSION,
        "studyInstanceUID": study,
        "extensions": found,
    }
    return store.write_json_gz(target, document)


def list_folders(store: ReadableStore, study: str) -> list[dict[str, Any]]:
    """Every extension folder of ``study`` with its files, study level first."""
    where = ResourcePath.study(study)
    found = _folders_of(store, where)
    for series in _uid_folders(store, f"{where.file}/series"):
        series_path = ResourcePath.series(study, series)
        found += _folders_of(store, series_path)
        for sop in _uid_folders(store, f"{series_path.file}/instances"):
            found += _folders_of(store, ResourcePath.instance((study, series, sop)))
    return found


def _uid_folders(store: ReadableStore, path: str) -> list[str]:
    return [name for name in folders(store, path) if uids.is_valid_uid(name)]


def _folders_of(store: ReadableStore, level: ResourcePath) -> list[dict[str, Any]]:
    study_prefix = f"{paths.study_dir(str(level.study_instance_uid))}/"
    found = []
    for name in folders(store, level.file):
        if not extensions.is_folder_name(name):
            continue
        files = []
        for entry in store.list(f"{level.file}/{name}"):
            if entry.is_folder:
                continue
            try:
                target = level.extension_path(name, entry.name)
                size = store.stat(target.file).size
            except (InvalidInputError, ResourceNotFoundError):
                continue  # not a name attach writes, or a link: not served either
            files.append(
                {
                    "name": entry.name,
                    "size": size,
                    "contentType": extensions.content_type(entry.name),
                }
            )
        if files:
            found.append(_describe(level, name, study_prefix, files))
    return found


def _describe(
    level: ResourcePath, name: str, study_prefix: str, files: list[dict[str, Any]]
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "level": _LEVEL_NAMES[level.type],
        "name": name,
        "vendor": extensions.vendor(name),
        "path": f"{level.file}/{name}".removeprefix(study_prefix),
        "files": files,
    }
    if level.series_instance_uid:
        entry["seriesInstanceUID"] = level.series_instance_uid
    if level.sop_instance_uid:
        entry["sopInstanceUID"] = level.sop_instance_uid
    return entry
