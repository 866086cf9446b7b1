"""The catalog: the one place where an archive's derived documents are refreshed.

The instances' own ``metadata.gz`` files are the truth.  Derived from them, per
study: series and study metadata, the QIDO-RS documents (``series/index.json.gz``,
``instances/index.json.gz``, the study's row) and ``deduplicated.json.gz``; for the
archive: the study list ``studies/index.json.gz`` and the SQLite QIDO-RS index
(:mod:`dicomweb_archive.store.index`, once it exists).  Every writer (conversion,
transcoding, STOW-RS, packing) tells the catalog what it wrote and asks for a
:meth:`Catalog.refresh`; today that recomputes each touched study whole, under its
lock, so concurrent writers and reruns after a kill converge on the same bytes.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from dicomweb_archive import tags
from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.model.aggregate import Conflict, study_documents, study_sort_key
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import Store, dumps_json, folders, gzip_bytes
from dicomweb_archive.store.index import INDEX_PATH, QidoIndex
from dicomweb_archive.store.session import writing_study
from dicomweb_archive.types import InstanceKey, JSONDataset, first_value

_UNREADABLE = (ResourceNotFoundError, OSError, EOFError, zlib.error, orjson.JSONDecodeError)


@dataclass
class Refreshed:
    """What one refresh did."""

    #: The studies refreshed, sorted.
    studies: list[str] = field(default_factory=list)
    #: Attributes whose values differ between instances that should share them.
    conflicts: list[Conflict] = field(default_factory=list)


class Catalog:
    """The derived documents of ``archive``.

    >>> catalog = Catalog(archive)  # doctest: +SKIP
    >>> catalog.instances_written(keys)  # doctest: +SKIP
    >>> catalog.refresh()  # doctest: +SKIP
    """

    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self._pending: set[str] = set()

    def instances_written(self, keys: Iterable[InstanceKey]) -> None:
        """Note instances stored or changed; the next :meth:`refresh` covers them."""
        self._pending.update(key.study_instance_uid for key in keys)

    def refresh(self, studies: Iterable[str] = ()) -> Refreshed:
        """Rebuild the documents of ``studies`` and of every noted instance's study."""
        ordered = sorted(self._pending.union(studies))
        self._pending.clear()
        done = Refreshed(ordered)
        rows: dict[str, JSONDataset | None] = {}
        for study in ordered:
            rows[study], conflicts = self._refresh_study(study)
            done.conflicts.extend(conflicts)
        if rows or not self.archive.exists(paths.STUDIES_INDEX):
            self._update_study_list(rows)
        self._update_index(ordered)
        return done

    def studies_moved(self, studies: Iterable[str]) -> None:
        """List studies that arrived whole (their documents travel with them)."""
        rows = {study: self.study_row(study) for study in studies}
        self._update_study_list(rows)
        self._update_index(sorted(rows))

    # -- the SQLite index ---------------------------------------------------------

    def has_index(self) -> bool:
        local = self.archive.store.local_path(INDEX_PATH)
        return local is not None and local.exists()

    def open_index(self) -> QidoIndex:
        """The archive's QIDO-RS index, built first when there is none."""
        fresh = not self.has_index()
        index = QidoIndex(self.archive)
        if fresh:
            index.rebuild()
        return index

    def rebuild_index(self) -> int:
        """Index every study afresh; returns the number of studies."""
        with QidoIndex(self.archive) as index:
            return index.rebuild()

    def _update_index(self, studies: list[str]) -> None:
        if studies and self.has_index():
            with QidoIndex(self.archive) as index:
                index.update_studies(studies)

    # -- the archive's study list ---------------------------------------------------

    def study_row(self, study: str) -> JSONDataset | None:
        """The study's own QIDO row, or None when it has none (yet)."""
        if not self.archive.exists(paths.study_row(study)):
            return None
        row: JSONDataset = self.archive.read_json_gz(paths.study_row(study))[0]
        return row

    def _update_study_list(self, rows: dict[str, JSONDataset | None]) -> None:
        """Put the given study rows into ``studies`` (``None`` removes a study)."""
        archive = self.archive
        with archive.lock("studies-index"):
            current: dict[str, JSONDataset] = {}
            if archive.exists(paths.STUDIES_INDEX):
                for row in archive.read_json_gz(paths.STUDIES_INDEX):
                    uid = first_value(row, tags.StudyInstanceUID)
                    if uid:
                        current[str(uid)] = row
            else:
                # First list, or one lost: rebuild from every study's own row.
                for study in archive.study_uids():
                    found = self.study_row(study)
                    if found is not None:
                        current[study] = found
            for study, row in rows.items():
                if row is None:
                    current.pop(study, None)
                else:
                    current[study] = row
            ordered = sorted(current.values(), key=study_sort_key)
            archive.store.write_json_gz(paths.STUDIES_INDEX, ordered)

    # -- one study's documents ------------------------------------------------------

    def _refresh_study(self, study: str) -> tuple[JSONDataset | None, list[Conflict]]:
        """Rewrite one study's documents; returns its QIDO row and conflicts."""
        with writing_study(self.archive, study, exclusive=True) as store:
            by_series = _load_instances(store, study)
            if not by_series:
                for path in (
                    paths.study_metadata(study),
                    paths.study_row(study),
                    paths.series_index(study),
                ):
                    store.remove(path)
                return None, []
            return _write_documents(store, study, by_series)


def _load_instances(store: Store, study: str) -> dict[str, list[JSONDataset]]:
    by_series: dict[str, list[JSONDataset]] = {}
    for series in folders(store, f"{paths.study_dir(study)}/series"):
        instances = []
        for sop in folders(store, f"{paths.series_dir(study, series)}/instances"):
            try:
                document = store.read_json_gz(paths.instance_metadata(study, series, sop))
            except (*_UNREADABLE, gzip.BadGzipFile):
                continue  # not committed yet, or damaged: not part of the study
            instances.extend(document)
        if instances:
            by_series[series] = instances
    return by_series


def _write_documents(
    store: Store, study: str, by_series: dict[str, list[JSONDataset]]
) -> tuple[JSONDataset, list[Conflict]]:
    docs = study_documents(study, by_series)
    series_metadata: dict[str, bytes] = {}
    for documents in docs.series:
        uid = documents.series_instance_uid
        series_metadata[uid] = gzip_bytes(dumps_json(documents.metadata))
        store.write(paths.series_metadata(study, uid), series_metadata[uid])
        store.write_json_gz(paths.instances_index(study, uid), documents.instance_rows)
    # Series folders without committed instances lose their documents.
    for series in folders(store, f"{paths.study_dir(study)}/series"):
        if series not in by_series:
            store.remove(paths.series_metadata(study, series))
            store.remove(paths.instances_index(study, series))
    store.write_json_gz(paths.series_index(study), docs.series_rows)
    # A study of one series has that series' metadata, byte for byte.
    study_metadata = (
        next(iter(series_metadata.values()))
        if len(series_metadata) == 1
        else gzip_bytes(dumps_json(docs.metadata))
    )
    store.write(paths.study_metadata(study), study_metadata)
    store.write_json_gz(
        paths.deduplicated(study),
        {**docs.deduplicated, "conflicts": [c.to_json() for c in docs.conflicts]},
    )
    store.write_json_gz(paths.study_row(study), [docs.row])
    return docs.row, docs.conflicts
