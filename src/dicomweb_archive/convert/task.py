"""The task of a conversion's workers: one input into the archive, as an outcome."""

from __future__ import annotations

import os
import threading

from dicomweb_archive.batch import failure_of
from dicomweb_archive.convert.inputs import Source
from dicomweb_archive.convert.instance import InstanceOutcome, store_instance
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.errors import DuplicateInstanceError, NotDicomError
from dicomweb_archive.p10.reader import read_instance
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import QidoIndex

#: One input and its place in the run's inputs.
Numbered = tuple[int, Source]


def convert_into(
    archive: Archive, options: ConvertOptions, ref: Source, *, own_source: bool = False
) -> InstanceOutcome:
    """Convert one input into ``archive``; every failure becomes an outcome."""
    try:
        with ref.open() as fp:
            return store_instance(
                archive, options, read_instance(fp, ref.name), own_source=own_source
            )
    except Exception as exc:  # one bad input must not stop the others
        failure = failure_of(exc, ref.name)
        # Found in a folder or ZIP file beside the DICOM files (a README): skipped.
        refused = failure.refused or (ref.contained and isinstance(exc, NotDicomError))
        outcome = InstanceOutcome(ref.name, "skipped" if refused else "failed", failure.reason)
        if isinstance(exc, DuplicateInstanceError) and exc.key is not None:
            # Which copy a run keeps is decided among its copies (convert.copies).
            outcome.study_instance_uid, outcome.series_instance_uid, outcome.sop_instance_uid = (
                exc.key
            )
            outcome.duplicate = True
        return outcome


#: The archive a process's tasks write into, opened by its first task: (process,
#: location, archive).  Opening one costs a few file system calls and objects
#: per task (an object store, a client); a worker's tasks share one instead.
_opened: tuple[int, str, Archive] | None = None
_opening = threading.Lock()


def task_archive(location: str) -> Archive:
    """The archive at ``location`` for this process's tasks, opened once.

    Held by process id (a forked worker opens its own) and by location (the
    last one only); :func:`release_task_archive` closes it.
    """
    global _opened
    with _opening:
        if _opened is not None and _opened[:2] == (os.getpid(), location):
            return _opened[2]
        archive = open_archive(location)
        previous, _opened = _opened, (os.getpid(), location, archive)
    # Another location's (a process converting into several archives in turn).
    if previous is not None and previous[0] == os.getpid():
        previous[2].close()
    return archive


def release_task_archive() -> None:
    """Close this process's task archive and index (a run that ran its tasks here ends)."""
    global _opened
    with _opening:
        previous, _opened = _opened, None
    if previous is not None and previous[0] == os.getpid():
        previous[2].close()
    kept = getattr(_indexes, "kept", None)
    _indexes.kept = None
    if kept is not None and kept[0] == os.getpid():
        kept[2].close()


#: The QIDO-RS index a thread's reduce tasks write rows to, kept open between
#: them: (process, location, index).  SQLite copies its log into the database,
#: syncing it, when the last connection to it closes: opened and closed by each
#: task, the index was synced once per task, and each sync waited for the file
#: system to commit every file the conversion had written since.  By thread (a
#: connection serves the thread that made it: a Dask worker runs tasks on
#: several) and by process (a forked worker opens its own).
_indexes = threading.local()


def task_index(location: str) -> QidoIndex | None:
    """The archive's QIDO-RS index for this thread's tasks, opened once; None
    when the archive has none (a conversion does not make one)."""
    kept = getattr(_indexes, "kept", None)
    if kept is not None and kept[:2] == (os.getpid(), location):
        index: QidoIndex = kept[2]
        return index
    catalog = Catalog(task_archive(location))
    if not catalog.has_index():  # asked again by the next task: one may be made meanwhile
        return None
    index = catalog.open_index()
    _indexes.kept = (os.getpid(), location, index)
    # Another location's (a process converting into several archives in turn).
    if kept is not None and kept[0] == os.getpid():
        kept[2].close()
    return index


def convert_input(location: str, options: ConvertOptions, ref: Source) -> InstanceOutcome:
    """Convert one input (a worker's task); every failure becomes an outcome."""
    return convert_into(task_archive(location), options, ref)


def convert_numbered(
    location: str, options: ConvertOptions, item: Numbered
) -> tuple[int, InstanceOutcome]:
    """:func:`convert_input` of one of a run's inputs, with its place."""
    index, ref = item
    return index, convert_input(location, options, ref)


def lost_input(item: Numbered, reason: str) -> tuple[int, InstanceOutcome]:
    """The outcome of an input whose worker died converting it."""
    index, ref = item
    return index, InstanceOutcome(ref.name, "failed", reason=f"not converted: {reason}")
