"""One study write session: the study's lock held, a packed study unpacked once.

Writers of a study's files (a conversion, a transcoding, STOW-RS, the refresh of
the study's documents) hold the study's lock: shared while they write files of
their own instance or rewrite the study's documents (a refresh holds the
study's refresh lock too, so refreshes come one at a time), exclusive to pack or
unpack it.  A packed study is unpacked first, under the exclusive lock, so every
write lands in the folder and a concurrent pack waits for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from dicomweb_archive.model import paths
from dicomweb_archive.model.hosting import publication_order
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import Store
from dicomweb_archive.store.studyzip import StudyZip


def study_lock(study: str) -> str:
    """The name of the lock that guards one study's files."""
    return f"study-{study}"


def refresh_lock(study: str) -> str:
    """The name of the lock that orders refreshes of one study's documents.

    Held by one refresh at a time (and by a pack, which copies the documents);
    writers of instances go on meanwhile, under the study's shared lock.
    """
    return f"refresh-{study}"


@contextlib.contextmanager
def writing_study(archive: Archive, study: str, *, exclusive: bool = False) -> Iterator[Store]:
    """Write access to the files of ``study``: the store, with the study unpacked.

    Shared unless ``exclusive``: writers of different instances of one study
    work side by side, and a pack waits for all of them.
    """
    lock = study_lock(study)
    if exclusive:
        with archive.lock(lock):
            ensure_unpacked(archive, study)
            yield archive.store
        return
    while True:
        with archive.lock(lock, shared=True):
            if not archive.is_packed(study):
                yield archive.store
                return
        with archive.lock(lock):
            ensure_unpacked(archive, study)


def ensure_unpacked(archive: Archive, study: str) -> bool:
    """Turn the study's ZIP back into its folder; False when it was not packed.

    The caller holds the study's lock exclusively.  The folder ends up holding
    exactly the ZIP's files; the ZIP is removed last (unpacking's commit point).
    """
    packed = archive.study_zip(study)
    if packed is None:
        return False
    restore_study(archive.store, study, packed)
    archive.store.remove(paths.study_zip(study))
    archive.forget(study)
    return True


def restore_study(store: Store, study: str, packed: StudyZip) -> None:
    """Make the study's folder hold exactly the files of ``packed`` (its ZIP).

    Written in publication order (an instance's files before its metadata, the
    study's documents after them), so a host never shows a document whose
    files are not there yet.
    """
    names = set(packed.names())
    for name in publication_order(names):
        store.write(name, packed.read(name))
    _prune(store, paths.study_dir(study), names)


def _prune(store: Store, folder: str, keep: set[str]) -> None:
    """Remove what the folder holds beyond ``keep`` (files left by an older study)."""
    keep_folders: set[str] = set()
    for name in keep:
        parts = name.split("/")
        keep_folders.update("/".join(parts[:end]) for end in range(1, len(parts)))
    pending = [folder]
    while pending:
        current = pending.pop()
        for entry in store.list(current):
            path = f"{current}/{entry.name}"
            if entry.is_folder and path in keep_folders:
                pending.append(path)
            elif entry.is_folder:
                store.remove_tree(path)
            elif path not in keep:
                store.remove(path)
