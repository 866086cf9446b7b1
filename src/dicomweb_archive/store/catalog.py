"""The catalog: the one place where an archive's derived documents are refreshed.

The instances' own ``metadata.gz`` files are the truth.  Derived from them, per
study: series and study metadata, the QIDO-RS documents (``series/index.json.gz``,
``instances/index.json.gz``, the study's row) and ``deduplicated.json.gz``; for the
archive: the study list (``studies/index.json.gz`` and its pages,
:mod:`~dicomweb_archive.store.listing`) and the SQLite QIDO-RS index
(:mod:`dicomweb_archive.store.index`, once it exists).

Writers tell the catalog what they wrote.  A batch writer (``dwa convert``,
``dwa transcode``) asks for a :meth:`Catalog.refresh` at the end of its run: the
touched studies' documents are recomputed whole under their locks, then the study
list is rewritten once.  STOW-RS writes behind (:meth:`Catalog.defer_instances`): it
marks the study stale in the :mod:`~dicomweb_archive.store.journal`, naming the
instances (a refresh here reads only those again, :mod:`~dicomweb_archive.store.views`),
and answers; the
server's flusher coalesces the marked studies into one :meth:`Catalog.flush` at a
bounded delay, and every read of a stale study's documents first
settles it (:meth:`Catalog.settle`), so no reader sees a half-updated study.  Concurrent
writers and reruns after a kill converge on the same bytes.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from dicomweb_archive.collector import full_passes_held
from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.model.aggregate import Conflict, StudyDocuments
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import Store, folders
from dicomweb_archive.store.documents import write_documents
from dicomweb_archive.store.extensions import refresh_list
from dicomweb_archive.store.index import INDEX_PATH, QidoIndex
from dicomweb_archive.store.indexrows import Part
from dicomweb_archive.store.journal import Changes, Journal
from dicomweb_archive.store.listing import RowOf, StudyList
from dicomweb_archive.store.manifest import ArchiveOptions, read_manifest
from dicomweb_archive.store.recall import Recall
from dicomweb_archive.store.session import refresh_lock, study_lock, writing_study
from dicomweb_archive.store.sqlerrors import once_more_when_damaged
from dicomweb_archive.store.stitched import Stitcher
from dicomweb_archive.store.views import Seen, StudyView, Views
from dicomweb_archive.types import InstanceKey, JSONDataset

#: Studies refreshed together: their refresh locks held at once, their index rows
#: written in one transaction; what a refresh holds in memory is one such batch.
BATCH = 64
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

    def __init__(self, archive: Archive, *, index: QidoIndex | None = None) -> None:
        self.archive = archive
        #: The QIDO-RS index to write rows to, kept open by the caller between
        #: refreshes (else each refresh opens the archive's, when it has one).
        self.kept_index = index
        self.journal = Journal(archive)
        #: Instances read by earlier refreshes (a study's next refresh reads
        #: only what changed since).
        self.recall = Recall()
        #: The chunks of the documents last written (the next write deflates
        #: only what changed).
        self.stitcher = Stitcher()
        #: What the last refresh of each study saw (the next one reads only
        #: the instances the journal names).
        self.views = Views()
        self._pending: set[str] = set()

    def instances_written(self, keys: Iterable[InstanceKey]) -> None:
        """Note instances stored or changed; the next :meth:`refresh` covers them."""
        for key in keys:
            self._pending.add(key.study_instance_uid)
            self.views.take(key.study_instance_uid)  # scanned whole next time

    def defer(self, studies: Iterable[str]) -> None:
        """Leave the documents of ``studies`` to a later flush (write-behind),
        any of their instances changed."""
        for study in studies:
            with self.archive.lock(study_lock(study), shared=True):
                self.journal.mark_stale(study)

    def defer_instances(self, keys: Iterable[InstanceKey]) -> None:
        """Leave the documents of the studies of ``keys`` (instances stored or
        changed) to a later flush, which reads those instances again only."""
        by_study: dict[str, list[tuple[str, str]]] = {}
        for key in keys:
            named = (key.series_instance_uid, key.sop_instance_uid)
            by_study.setdefault(key.study_instance_uid, []).append(named)
        for study, instances in sorted(by_study.items()):
            with self.archive.lock(study_lock(study), shared=True):
                self.journal.mark_stale(study, instances)

    def refresh(self, studies: Iterable[str] = ()) -> Refreshed:
        """Rebuild the documents of ``studies``, of every noted instance's study and
        of every stale one, then the study list (once)."""
        done = self.settle(self._pending.union(studies, self.journal.stale()))
        self._pending.clear()
        self._update_study_list()
        return done

    def flush(self) -> Refreshed:
        """Catch up with every deferred write: documents, index, study list."""
        return self.refresh()

    def settle(self, studies: Iterable[str] | None = None) -> Refreshed:
        """Rebuild the documents and index rows of ``studies`` (default: the stale
        ones), leaving the study list to the next :meth:`refresh`."""
        ordered = sorted(self.journal.stale() if studies is None else set(studies))
        done = Refreshed(ordered)
        # Read each time: another process (dwa index --qido-fields) may change them.
        fields = self._qido_fields() if ordered else ()
        # It keeps nearly all it makes (views, recalled instances, documents).
        with full_passes_held():
            for start in range(0, len(ordered), BATCH):
                done.conflicts.extend(self._settle_batch(ordered[start : start + BATCH], fields))
        return done

    def _qido_fields(self) -> tuple[str, ...]:
        """The archive's ``qidoFields`` (a store without a manifest has none)."""
        manifest = read_manifest(self.archive)
        return () if manifest is None else ArchiveOptions.from_json(manifest).qido_fields

    def _settle_batch(self, studies: list[str], fields: tuple[str, ...]) -> list[Conflict]:
        conflicts: list[Conflict] = []
        tokens: dict[str, tuple[bytes | None, Changes]] = {}
        documents: dict[str, StudyDocuments | None] = {}
        views: dict[str, StudyView] = {}
        with contextlib.ExitStack() as held:
            # In sorted order: concurrent refreshers never wait for each other in a cycle.
            for study in studies:
                held.enter_context(self.archive.lock(refresh_lock(study)))
            for study in studies:
                docs, tokens[study], view = self._refresh_study(study, fields)
                documents[study] = docs
                if view is not None:
                    views[study] = view
                conflicts.extend(docs.conflicts if docs is not None else [])
            rows: dict[str, list[Part]] = {}
            if documents and (self.kept_index is not None or self.has_index()):
                with self._index_to_write() as index:
                    written = {study: view.rows for study, view in views.items() if view.rows}
                    rows = index.replace_studies(documents, written)
            # Committed (or no index): the next refresh of a view writes what changed since.
            for study, view in views.items():
                view.rows = rows.get(study)
            # Only now, documents and index rows written, is a study current;
            # its lock excludes a writer marking it stale between test and removal.
            for study, (token, changes) in tokens.items():
                if token is not None or changes.names:
                    with self.archive.lock(study_lock(study)):
                        self.journal.clear_stale(study, token, changes)
        return conflicts

    def settle_study(self, study: str) -> None:
        """Make a stale study's documents current before they are read."""
        if self.journal.is_stale(study):
            self.settle([study])

    def studies_moved(self, studies: Iterable[str], *, merge: bool = False) -> None:
        """List studies that arrived whole (their documents travel with them);
        ``merge``: into the list as published, whatever this process recorded."""
        moved = sorted(studies)
        for study in moved:
            with self.archive.lock(refresh_lock(study)):
                self.journal.mark_unlisted(study)
        self._update_study_list(merge=merge)
        self.index_studies(moved)

    # -- the SQLite index ---------------------------------------------------------

    def has_index(self) -> bool:
        local = self.archive.store.local_path(INDEX_PATH)
        return local is not None and local.exists()

    @contextlib.contextmanager
    def _index_to_write(self) -> Iterator[QidoIndex]:
        """:attr:`kept_index`, or the archive's opened for the block."""
        if self.kept_index is not None:
            yield self.kept_index
            return
        with self.open_index() as index:
            yield index

    def open_index(self) -> QidoIndex:
        """The archive's QIDO-RS index, built first when there is none (or one
        of another schema version, or one whose first build did not finish)."""
        index = QidoIndex(self.archive)
        if not index.complete:
            index.ensure_complete()
        return index

    def rebuild_index(self) -> int:
        """Index every study afresh; returns the number of studies."""
        with QidoIndex(self.archive) as index:
            return index.rebuild()

    def rebuild(self) -> int:
        """Index every study afresh, then list them afresh from the index's
        rows (``dwa index``: each study's row read once); returns the number of
        studies indexed."""
        with QidoIndex(self.archive) as index:
            count = index.rebuild()
            self.rebuild_study_list(index.study_row)
        return count

    def index_studies(self, studies: list[str]) -> None:
        """Index ``studies`` afresh from their documents, when there is an index."""
        if studies and self.has_index():
            with self.open_index() as index:
                index.update_studies(studies)

    # -- the archive's study list ---------------------------------------------------

    def study_row(self, study: str) -> JSONDataset | None:
        """The study's own QIDO row, or None when it has none (yet)."""
        if not self.archive.exists(paths.study_row(study)):
            return None
        row: JSONDataset = self.archive.read_json_gz(paths.study_row(study))[0]
        return row

    def _update_study_list(self, *, merge: bool = False) -> None:
        """Put the rows of the unlisted studies into the list (no row: removed);
        see :mod:`~dicomweb_archive.store.listing`.  A record found damaged is
        made anew and the update made once more."""
        once_more_when_damaged(functools.partial(self._list_unlisted, merge=merge))

    def _list_unlisted(self, *, merge: bool) -> None:
        archive, journal = self.archive, self.journal
        tokens: dict[str, bytes | None] = {}

        def listed_row(study: str) -> JSONDataset | None:
            # The token before the row: a refresh in between keeps its marker.
            with archive.lock(refresh_lock(study)):
                tokens[study] = journal.token(study)
                return self.study_row(study)

        with archive.lock("studies-index"), StudyList(archive) as listing:
            # Read before the rows: marks lost again meanwhile keep their stand-in.
            relist = journal.relisting()
            unlisted = journal.unlisted()
            # First list, or its record lost: from the published list, else from
            # every study's row; a merge takes what others published meanwhile.
            # Marks lost: from every study's row, whatever was published.
            if relist is not None or ((merge or not listing.complete) and not listing.adopt()):
                for study in unlisted:
                    listed_row(study)
                listing.rebuild(self.study_row)
            else:
                listing.update(unlisted, listed_row)
            for study, token in tokens.items():
                with archive.lock(refresh_lock(study)):
                    journal.clear_unlisted(study, token)
            if relist is not None:
                journal.relisted(relist)

    def rebuild_study_list(self, row_of: RowOf | None = None) -> int:
        """List every study afresh, pages renumbered, each with its row as
        ``row_of`` gives it (None: as :meth:`study_row` reads it); returns how many."""

        def rebuild() -> int:
            with self.archive.lock("studies-index"), StudyList(self.archive) as listing:
                return listing.rebuild(row_of or self.study_row)

        return once_more_when_damaged(rebuild)

    # -- one study's documents ------------------------------------------------------

    def _refresh_study(
        self, study: str, fields: tuple[str, ...]
    ) -> tuple[StudyDocuments | None, tuple[bytes | None, Changes], StudyView | None]:
        """Rewrite one study's documents (its refresh lock held); returns them
        (None: the study has no instances), the stale marker's token read
        before the instances, the changes listed after it, and the study's view.

        Writers of instances go on meanwhile: one committed after the token was
        read marks the study stale again, so a later refresh covers it.
        """
        with writing_study(self.archive, study) as store:
            token = self.journal.stale_token(study)
            changes = self.journal.changes(study)
            view = self._view(store, study, token is not None, changes)
            by_series = view.by_series()
            docs, kept = None, None
            if by_series:
                docs = write_documents(store, study, by_series, fields, self.stitcher)
                view.written = store.stat(paths.study_metadata(study)).version
                self.views.keep(study, view)
                kept = view
            else:
                for path in (
                    paths.study_metadata(study),
                    paths.study_row(study),
                    paths.series_index(study),
                    paths.bulkdata_context(study),
                ):
                    store.remove(path)
            refresh_list(store, study)
            self.journal.mark_unlisted(study)
            return docs, (token, changes), kept

    def _view(self, store: Store, study: str, stale: bool, changes: Changes) -> StudyView:
        """The study's instances: the view of its last refresh here with the
        instances named changed read again, when nothing else can have changed
        (see :mod:`~dicomweb_archive.store.views`); else every instance."""
        view = self.views.take(study)
        if view is not None and stale and changes.instances is not None:
            try:
                current = store.stat(paths.study_metadata(study)).version == view.written
            except ResourceNotFoundError:
                current = False
            if current:
                for series, sop in sorted(changes.instances):
                    view.see(series, sop, self._seen(store, study, series, sop))
                return view
        return self._scan(store, study, view)

    def _seen(self, store: Store, study: str, series: str, sop: str) -> Seen | None:
        """One instance's document as it is now (None: none, or not readable)."""
        path = _metadata_path(study, series, sop)
        try:
            stat = store.stat(path)
            return stat.version, stat.size, self.recall.instances(store, path, stat)
        except (*_UNREADABLE, gzip.BadGzipFile):
            return None  # not committed yet, deleted or damaged: not part of the study

    def _scan(self, store: Store, study: str, before: StudyView | None = None) -> StudyView:
        """Every instance of the study, read again where changed since ``recall``
        read it, or since the view ``before`` saw it (a view no longer trusted
        whole: each document it saw is still known by its version, as in
        ``recall``, which holds fewer than a large study's)."""
        view = StudyView()
        for series in folders(store, f"{paths.study_dir(study)}/series"):
            # The versions of a series' metadata documents, in one look.
            versions = store.stat_children(
                f"{paths.series_dir(study, series)}/instances", paths.METADATA
            )
            known = before.series.get(series, {}) if before is not None else {}
            for sop in sorted(versions):
                stat = versions[sop]
                seen = known.get(sop)
                if seen is None or seen[0] != stat.version:
                    path = _metadata_path(study, series, sop)
                    try:
                        seen = stat.version, stat.size, self.recall.instances(store, path, stat)
                    except (*_UNREADABLE, gzip.BadGzipFile):
                        continue  # not committed yet, or damaged: not part of the study
                # One object per UID across refreshes: what instances keep is
                # found by identity (store/documents.py).
                view.see(series, sop, seen)
        return view


@functools.lru_cache(maxsize=1 << 16)
def _metadata_path(study: str, series: str, sop: str) -> str:
    # Built (and its UIDs checked) once per instance, not once per refresh.
    return paths.instance_metadata(study, series, sop)
