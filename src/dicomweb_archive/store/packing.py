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
from collections.abc import Iterator
from pathlib import Path

from dicomweb_archive.errors import (
    ArchiveError,
    InvalidStudyZipError,
    ResourceNotFoundError,
)
from dicomweb_archive.model import paths
from dicomweb_archive.store.directory import Archive
from dicomweb_archive.store.index import INDEX_FILE, QidoIndex
from dicomweb_archive.store.manifest import ArchiveOptions, ensure, read_options
from dicomweb_archive.store.studies import (
    StudyFiles,
    is_packed,
    study_lock,
    update_studies_index,
)
from dicomweb_archive.store.studyzip import StudyZip, study_file_names, write_study_zip
from dicomweb_archive.types import JSONDataset


def _same_archive(a: Archive, b: Archive) -> bool:
    return os.path.realpath(a.root) == os.path.realpath(b.root)


def _refresh_qido(archive: Archive, study: str) -> None:
    if archive.path(f"{paths.WORK_DIR}/{INDEX_FILE}").exists():
        with QidoIndex(archive) as index:
            index.update_studies([study])


def _row(packed: StudyZip) -> JSONDataset:
    study = packed.study_instance_uid
    if not packed.exists(paths.study_row(study)):
        raise InvalidStudyZipError(f"{packed.path}: has no {paths.study_row(study)}")
    row: JSONDataset = packed.read_json_gz(paths.study_row(study))[0]
    return row


def _folder_row(archive: Archive, study: str) -> JSONDataset:
    if not archive.exists(paths.study_row(study)):
        raise InvalidStudyZipError(f"study {study} has no {paths.study_row(study)}")
    row: JSONDataset = archive.read_json_gz(paths.study_row(study))[0]
    return row


# -- packing -----------------------------------------------------------------------


def pack_study(
    archive: Archive, study: str, target: Archive | None = None, *, remove: bool = False
) -> Path:
    """Pack one study into a ZIP; returns the ZIP's path.

    Without ``target`` (or with ``archive`` itself) the ZIP is
    ``studies/{study}.zip`` of ``archive``, and ``remove`` drops the folder once
    the ZIP is in place.  A study already packed is left as it is.  With another
    ``target`` archive (created when missing), the ZIP goes there and the source
    is untouched.
    """
    options = read_options(archive)
    if target is not None and not _same_archive(archive, target):
        if remove:
            raise ValueError("remove applies to packing in place only")
        return _pack_into(archive, study, target, options)
    relative = paths.study_zip(study)
    with archive.lock(study_lock(study)):
        if not is_packed(archive, study):
            if not archive.path(paths.study_dir(study)).is_dir():
                raise ResourceNotFoundError(f"study {study} is not in the archive")
            with archive.temporary_file() as tmp:
                write_study_zip(archive.root, study, tmp.handle, options)
                archive.commit(tmp, relative)
        if remove:
            shutil.rmtree(archive.path(paths.study_dir(study)), ignore_errors=True)
    return archive.path(relative)


def _pack_into(archive: Archive, study: str, target: Archive, options: ArchiveOptions) -> Path:
    ensure(target, options)
    relative = paths.study_zip(study)
    with target.temporary_file() as tmp:
        with archive.lock(study_lock(study), shared=True):
            if is_packed(archive, study):
                with StudyZip(archive.path(relative), study=study) as packed:
                    row = _row(packed)
                for chunk in archive.iter_bytes(relative):
                    tmp.handle.write(chunk)
            elif archive.path(paths.study_dir(study)).is_dir():
                row = _folder_row(archive, study)
                write_study_zip(archive.root, study, tmp.handle, options)
            else:
                raise ResourceNotFoundError(f"study {study} is not in the archive")
        with target.lock(study_lock(study)):
            if target.path(paths.study_dir(study)).exists() and not is_packed(target, study):
                raise ArchiveError(
                    f"{target.root}: study {study} is there unpacked; it is not replaced"
                )
            target.commit(tmp, relative)
    update_studies_index(target, {study: row})
    _refresh_qido(target, study)
    return target.path(relative)


# -- unpacking ---------------------------------------------------------------------


def ensure_unpacked(archive: Archive, study: str) -> bool:
    """Turn the study's ZIP back into its folder; False when it was not packed.

    The caller holds the study's lock (exclusively).  The folder ends up holding
    exactly the ZIP's files; the ZIP is removed last.
    """
    try:
        packed = StudyZip(archive.path(paths.study_zip(study)), study=study)
    except ResourceNotFoundError:
        return False
    with packed:
        names = set(packed.names())
        for name in sorted(names):
            archive.write(name, packed.read(name))
    _prune(archive, study, names)
    os.unlink(archive.path(paths.study_zip(study)))
    return True


@contextlib.contextmanager
def unpacked_study(archive: Archive, study: str) -> Iterator[None]:
    """Hold ``study`` unpacked, its lock shared: instances may be written, packing waits.

    A packed study is unpacked first, under the lock held exclusively, then the
    lock is taken shared again (another writer may have packed it meanwhile).
    """
    lock = study_lock(study)
    while True:
        with archive.lock(lock, shared=True):
            if not is_packed(archive, study):
                yield
                return
        with archive.lock(lock):
            ensure_unpacked(archive, study)


def _prune(archive: Archive, study: str, keep: set[str]) -> None:
    """Remove files of the study folder that the ZIP does not hold."""
    root = archive.path(paths.study_dir(study))
    for current, _, files in os.walk(root, topdown=False):
        for name in files:
            path = os.path.join(current, name)
            if os.path.relpath(path, archive.root).replace(os.sep, "/") not in keep:
                os.unlink(path)
        if current != str(root) and not os.listdir(current):
            os.rmdir(current)


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
        row = _row(packed)
    own = archive.path(paths.study_zip(study))
    if own.exists() and os.path.samefile(own, zip_path):
        read_options(archive)
        with archive.lock(study_lock(study)):
            ensure_unpacked(archive, study)
        return study
    if options is None:
        raise InvalidStudyZipError(
            f"{zip_path}: its comment does not say which archive options made it"
        )
    ensure(archive, options)
    with archive.lock(study_lock(study)):
        if not _holds_same(archive, study, Path(zip_path)):
            with archive.temporary_file() as tmp, open(zip_path, "rb") as source:
                shutil.copyfileobj(source, tmp.handle, 1 << 20)
                archive.commit(tmp, paths.study_zip(study))
        ensure_unpacked(archive, study)
    update_studies_index(archive, {study: row})
    _refresh_qido(archive, study)
    return study


def _holds_same(archive: Archive, study: str, zip_path: Path) -> bool:
    """Whether the archive already holds exactly this study (packed or not).

    Raises when it holds the study with other content: studies are not merged.
    """
    with contextlib.ExitStack() as stack:
        if is_packed(archive, study):
            packed_here = stack.enter_context(
                StudyZip(archive.path(paths.study_zip(study)), study=study)
            )
            present: StudyFiles = packed_here
            names = set(packed_here.names())
        elif archive.path(paths.study_dir(study)).exists():
            present = archive
            names = set(study_file_names(archive.root, study))
        else:
            return False
        packed = stack.enter_context(StudyZip(zip_path, study=study))
        if names == set(packed.names()) and all(
            present.read(name) == packed.read(name) for name in sorted(names)
        ):
            return True
    raise ArchiveError(
        f"{archive.root}: study {study} is already there with other content; studies are not merged"
    )
