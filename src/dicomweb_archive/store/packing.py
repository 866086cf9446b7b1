"""Pack a study folder into its ZIP, and unpack it again, keeping the archive whole.

In place, ``studies/{study}/`` becomes ``studies/{study}.zip`` in the same
archive (the folder removed on request); the archive's study list and QIDO
index do not change, since the study's documents travel inside the ZIP.  Each
step leaves a consistent archive if killed: the ZIP appears by one rename
(packing's commit point) and disappears by one unlink after its entries are
all written (unpacking's), and while both exist the ZIP is the study.  Writers
of a study hold its lock: packing and unpacking exclusively, conversion shared.

A study can also be packed into another archive (``target``), which gets the
ZIP, the study's row in its study list, and the packing archive's options (a
mismatch is refused); and a loose study ZIP can be unpacked into an archive.
"""

from __future__ import annotations

import contextlib
import os
import shutil

from dicomweb_archive.errors import (
    ArchiveError,
    InvalidStudyZipError,
    ResourceNotFoundError,
    UnsupportedStoreError,
)
from dicomweb_archive.model import paths
from dicomweb_archive.store import registry
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import ReadableStore
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.manifest import ArchiveOptions, ensure, read_options
from dicomweb_archive.store.session import (
    ensure_unpacked,
    refresh_lock,
    restore_study,
    study_lock,
)
from dicomweb_archive.store.studyzip import StudyZip, study_file_names, write_study_zip


def _same_archive(a: Archive, b: Archive) -> bool:
    here, there = a.store.local_path(""), b.store.local_path("")
    if here is None or there is None:
        return a.url == b.url
    return os.path.realpath(here) == os.path.realpath(there)


def _check_row(files: ReadableStore, study: str) -> None:
    """A study without its own QIDO row would fall out of the study list."""
    if not files.exists(paths.study_row(study)):
        raise InvalidStudyZipError(f"{files.url}: study {study} has no {paths.study_row(study)}")


# -- packing -----------------------------------------------------------------------


def check_packable(archive: Archive) -> None:
    """Refuse an archive that cannot hold study ZIPs (an object store holds folders)."""
    if not archive.local_files:
        raise UnsupportedStoreError(
            f"{archive.url}: packed studies live in local folders only; "
            "an object-store archive holds study folders (pack into a local archive with -o)"
        )


def pack_study(
    archive: Archive, study: str, target: Archive | None = None, *, remove: bool = False
) -> str:
    """Pack one study into a ZIP; returns the ZIP's path in its archive.

    Without ``target`` (or with ``archive`` itself) the ZIP is
    ``studies/{study}.zip`` of ``archive``, and ``remove`` drops the folder once
    the ZIP is in place.  A study already packed is left as it is.  With another
    ``target`` archive (created when missing), the ZIP goes there and the source
    is untouched.  A ZIP goes to an archive with local files only (an object
    store holds study folders): :class:`UnsupportedStoreError` otherwise.
    """
    check_packable(target or archive)
    options = read_options(archive)
    if target is not None and not _same_archive(archive, target):
        if remove:
            raise ValueError("remove applies to packing in place only")
        return _pack_into(archive, study, target, options)
    relative = paths.study_zip(study)
    store = archive.store
    with archive.lock(study_lock(study)):
        if not archive.is_packed(study):
            if not store.exists(paths.study_dir(study)):
                raise ResourceNotFoundError(f"study {study} is not in the archive")
            with store.temporary_file() as tmp:
                write_study_zip(store, study, tmp.handle, options)
                store.commit(tmp, relative)
        if remove:
            store.remove_tree(paths.study_dir(study))
    return relative


def _pack_into(archive: Archive, study: str, target: Archive, options: ArchiveOptions) -> str:
    ensure(target.store, options)
    relative = paths.study_zip(study)
    with target.store.temporary_file() as tmp:
        # The refresh lock too: a refresh rewrites documents under the shared lock.
        with archive.lock(refresh_lock(study)), archive.lock(study_lock(study), shared=True):
            if not archive.has_study(study):
                raise ResourceNotFoundError(f"study {study} is not in the archive")
            _check_row(archive, study)
            if archive.is_packed(study):
                for chunk in archive.store.iter_bytes(relative):
                    tmp.handle.write(chunk)
            else:
                write_study_zip(archive.store, study, tmp.handle, options)
        with target.lock(study_lock(study)):
            if target.has_study(study) and not target.is_packed(study):
                raise ArchiveError(
                    f"{target.url}: study {study} is there unpacked; it is not replaced"
                )
            target.store.commit(tmp, relative)
    registry.register_study(target, study)
    Catalog(target).studies_moved([study])
    return relative


# -- unpacking ---------------------------------------------------------------------


def unpack_study(zip_path: str | os.PathLike[str], archive: Archive) -> str:
    """Unpack a study ZIP into ``archive``'s folders; returns the study UID.

    The archive's own ``studies/{study}.zip`` is unpacked in place and removed.
    Any other ZIP (packed elsewhere) is copied in first, then unpacked, and the
    study joins the archive's list; it must not be there already with other
    content, and the options it was packed with must match the archive's.
    """
    with StudyZip(zip_path) as packed:
        study = packed.study_instance_uid
        options = packed.options
        _check_row(packed, study)
    if _is_own_zip(archive, study, zip_path):
        unpack_in_place(archive, study)
        return study
    if options is None:
        raise InvalidStudyZipError(
            f"{zip_path}: its comment does not say which archive options made it"
        )
    ensure(archive.store, options)
    with archive.lock(study_lock(study)):
        if _holds_same(archive, study, zip_path):
            ensure_unpacked(archive, study)
        elif archive.local_files:
            with archive.store.temporary_file() as tmp, open(zip_path, "rb") as source:
                shutil.copyfileobj(source, tmp.handle, 1 << 20)
                archive.store.commit(tmp, paths.study_zip(study))
            ensure_unpacked(archive, study)
        else:  # no ZIPs in an object store: its files straight from the ZIP
            with contextlib.closing(StudyZip(zip_path, study=study)) as packed:
                restore_study(archive.store, study, packed)
    registry.register_study(archive, study)
    Catalog(archive).studies_moved([study])
    return study


def unpack_in_place(archive: Archive, study: str) -> bool:
    """Unpack the archive's own ZIP of ``study``; False when it was not packed."""
    read_options(archive)
    with archive.lock(study_lock(study)):
        return ensure_unpacked(archive, study)


def _is_own_zip(archive: Archive, study: str, zip_path: str | os.PathLike[str]) -> bool:
    try:
        own = archive.store.locate(paths.study_zip(study))
    except ResourceNotFoundError:
        return False
    return own is not None and os.path.samefile(own.path, zip_path)


def _holds_same(archive: Archive, study: str, zip_path: str | os.PathLike[str]) -> bool:
    """Whether the archive already holds exactly this study (packed or not).

    Raises when it holds the study with other content: studies are not merged.
    """
    if not archive.has_study(study):
        return False
    # Read through the archive: from its ZIP when packed, else from the folder.
    present = archive.study_zip(study)
    names = set(present.names() if present is not None else study_file_names(archive, study))
    with contextlib.closing(StudyZip(zip_path, study=study)) as packed:
        if names == set(packed.names()) and all(
            archive.read(name) == packed.read(name) for name in sorted(names)
        ):
            return True
    raise ArchiveError(
        f"{archive.url}: study {study} is already there with other content; studies are not merged"
    )
