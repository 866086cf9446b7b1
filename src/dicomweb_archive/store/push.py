"""Copy an archive's studies into another store, incrementally: :func:`push`.

The usual target is an object store (``dwa push archive/ s3://bucket/prefix``),
but any store works.  What makes it incremental is the target's own write: a
file whose bytes are there already is not written (an object store compares
size and ETag, so an unchanged file costs one HEAD request).  A killed push is
resumed by running it again: what arrived is skipped, the rest is sent.

Each study is copied under its lock in both archives, in publication order
(:func:`~dicomweb_archive.model.hosting.publication_order`): frames, bulk data
and ``info.json.gz`` first, each instance's ``metadata.gz`` after them, the
series and study documents last, so a static host in front of the target never
shows a document naming files that are not there yet.  Packed studies arrive as
folders.  Then the target's study list is rewritten from its studies' own rows
(studies pushed from elsewhere stay listed) and its QIDO-RS index, if it has
one, updated.  With ``delete``, files of a pushed study that the source no
longer has are removed from the target, documents first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby

from dicomweb_archive.model import paths
from dicomweb_archive.model.hosting import publication_order, publication_rank
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import files_under
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.manifest import ensure, read_options
from dicomweb_archive.store.session import study_lock

#: Files larger than this go through a temporary file, never whole in memory.
STREAM_SIZE = 64 << 20
#: Files copied at once (object stores answer each request in milliseconds).
WORKERS = 16


@dataclass
class PushResult:
    """What a push did."""

    studies: list[str] = field(default_factory=list)
    written: int = 0
    unchanged: int = 0
    removed: int = 0
    bytes_written: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "studies": len(self.studies),
            "written": self.written,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "bytesWritten": self.bytes_written,
            "seconds": round(self.seconds, 3),
        }


def push(
    source: Archive,
    target: Archive,
    studies: Iterable[str] | None = None,
    *,
    delete: bool = False,
    workers: int = WORKERS,
    progress: Callable[[str], None] | None = None,
) -> PushResult:
    """Copy ``studies`` (default: every study) of ``source`` into ``target``; see the module."""
    started = time.perf_counter()
    options = read_options(source)
    Catalog(source).flush()  # the documents as of every committed instance
    ensure(target.store, options)
    result = PushResult()
    chosen = source.study_uids() if studies is None else sorted(set(studies))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for study in chosen:
            with source.lock(study_lock(study)), target.lock(study_lock(study)):
                _push_study(source, target, study, pool, result, delete)
            result.studies.append(study)
            if progress is not None:
                progress(study)
    # Others may push into the bucket too: their studies stay listed.
    Catalog(target).studies_moved(result.studies, merge=True)
    result.seconds = time.perf_counter() - started
    return result


def _push_study(
    source: Archive,
    target: Archive,
    study: str,
    pool: ThreadPoolExecutor,
    result: PushResult,
    delete: bool,
) -> None:
    packed = source.study_zip(study)
    names = packed.names() if packed is not None else files_under(source, paths.study_dir(study))
    ordered = publication_order(names)
    for _, group in groupby(ordered, key=publication_rank):
        for written in pool.map(lambda name: _copy(source, target, name), list(group)):
            if written is None:
                result.unchanged += 1
            else:
                result.written += 1
                result.bytes_written += written
    if delete:
        extra = set(files_under(target.store, paths.study_dir(study))) - set(ordered)
        for name in reversed(publication_order(extra)):
            result.removed += target.store.remove(name)


def _copy(source: Archive, target: Archive, name: str) -> int | None:
    """Copy one file; its size when written, None when the target had it."""
    size = source.stat(name).size
    if size <= STREAM_SIZE:
        return size if target.store.write(name, source.read(name)) else None
    with target.store.temporary_file() as tmp:
        for chunk in source.iter_bytes(name):
            tmp.handle.write(chunk)
        return size if target.store.commit(tmp, name) else None
