"""An SQLite index of an archive's QIDO-RS rows: derived, rebuildable, disposable.

The archive's own documents stay the truth; the index only makes queries fast.
Deleting it loses nothing: :meth:`QidoIndex.rebuild` reads every study's
documents again.  Rows are kept as the DICOM JSON the archive serves, next to
the attributes a query may match or include at their level: for a study, the
study row and every attribute shared by all its instances; for a series, the
series row with its study's attributes; for an instance, its row with both
(each level stored with what it adds to its parents, merged when read:
:mod:`~dicomweb_archive.store.indexrows`).

The index is written in SQLite's write-ahead log mode with ``synchronous =
NORMAL``: a commit is not synced, the log is synced only when it is copied
into the database (a checkpoint).  It survives a killed process whole, and a
power failure or a crash of the system consistent, its last transactions
possibly lost, which SQLite documents for this mode.  No more is needed: the
instances it describes are themselves not synced (their files are renamed
into place, as every file of the archive is), and ``dwa index`` rebuilds it
from them.  Synced at every commit (``FULL``), each commit waited for the file
system to commit everything written since the last one: after a conversion,
every file it wrote.

A file found damaged (:mod:`~dicomweb_archive.store.sqlerrors`) is dropped and
rebuilt, and the operation that found it runs once more: a search answers
from the rebuilt index, never from a damaged or half-built one.  Connections
follow the file when another process made it anew (it found it damaged):
they would otherwise go on reading the old one.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import orjson

from dicomweb_archive import tags
from dicomweb_archive.errors import QueryTimeoutError, ResourceNotFoundError, StoreError
from dicomweb_archive.model import paths
from dicomweb_archive.model.aggregate import StudyDocuments
from dicomweb_archive.model.matching import Matcher, path_matcher
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import ReadableStore
from dicomweb_archive.store.columns import study_conditions
from dicomweb_archive.store.indexrows import (
    OFTEN_INCLUDED,
    STUDY_INSERT,
    FreshRows,
    Part,
    study_records,
    study_values,
    write_instance_rows,
    write_rows,
)
from dicomweb_archive.store.indextables import (
    SCHEMA_VERSION,
    TABLES,
    TEXT_DROP,
    create_text_index,
    has_text_index,
    make_tables,
)
from dicomweb_archive.store.planner import count_studies, rows_by_id, study_candidates, study_page
from dicomweb_archive.store.sqlerrors import (
    file_identity,
    opened_anew_when_damaged,
    recovered_when_damaged,
    remove_database,
)
from dicomweb_archive.types import JSONDataset, first_value

#: The index's file: one per schema version (see :mod:`~dicomweb_archive.store.indextables`).
INDEX_FILE = f"index-{SCHEMA_VERSION}.sqlite"
#: Where the index is, in the archive's work folder.
INDEX_PATH = f"{paths.WORK_DIR}/{INDEX_FILE}"
#: Rows a rebuild keeps before writing them (its memory: a study's rows at least).
BATCH_ROWS = 2_000
#: Longest a search may run before it gives up (seconds): a query that costs
#: more is refused rather than holding a worker and the database.
SEARCH_BUDGET = 5.0


def _connect(path: Path) -> sqlite3.Connection:
    """A connection to the index in write-ahead log mode, commits not synced
    (see the module); every connection says so, as the last one to close
    copies the log into the database."""
    db = sqlite3.connect(path, timeout=60, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


class Level(Enum):
    STUDY = "studies"
    SERIES = "series"
    INSTANCE = "instances"


@dataclass
class Query:
    """A QIDO-RS query: matching keys, and which attributes to return."""

    #: (tag, VR, value) triples; a tag is an 8-hex key, or a path of them joined
    #: by ``.`` into sequences; the VR is the last one's.
    match: list[tuple[str, str, str]] = field(default_factory=list)
    #: Extra attributes to return; ``None`` for all available at the level.
    include: set[str] | None = field(default_factory=set)
    limit: int | None = None
    offset: int = 0
    study: str | None = None
    series: str | None = None


#: Which file a connection reads (see :func:`~dicomweb_archive.store.sqlerrors.file_identity`).
_Identity = tuple[int, int] | None


def _series_uid(row: JSONDataset) -> str:
    return str(first_value(row, tags.SeriesInstanceUID))


def _recover(index: QidoIndex) -> None:
    """Drop the damaged file (unless another thread or process made it anew
    meanwhile) and open a new one, rebuilt before its next use."""
    with index._recovering:
        if file_identity(index.path) == index._identity:
            remove_database(index.path)
        index._reopen()


_recovered = recovered_when_damaged(lambda index: index.path, _recover)


class QidoIndex:
    """The index of ``archive``, in :data:`INDEX_PATH` unless told otherwise."""

    def __init__(self, archive: Archive, path: str | Path | None = None) -> None:
        self.archive = archive
        local = Path(path) if path else archive.store.local_path(INDEX_PATH)
        if local is None:
            raise StoreError(f"{archive.url}: the QIDO-RS index needs a local work folder")
        self.path = local
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._other_builds = path is None
        # Searches read through connections of their own, one at a time each:
        # a connection shared between threads keeps the snapshot of whichever
        # statement is still open on it, so a search could miss a row committed
        # before it began.  Each is kept with the file it reads.
        self._readers: queue.SimpleQueue[tuple[_Identity, sqlite3.Connection]] = queue.SimpleQueue()
        # Threads meeting a damaged or replaced file at once: one makes it anew.
        self._recovering = threading.RLock()
        #: Whether the file was made anew here, to be rebuilt before it answers.
        self._made_anew = False
        self._open()

    def _open(self) -> None:
        """Connect (a file found damaged is removed and made anew) and make the
        tables; learn whether the index is complete, has the text index, and
        which file it is."""

        def connect() -> bool:
            self._db = _connect(self.path)
            try:
                return make_tables(self._db, self.path, self._other_builds)
            except BaseException:
                self._db.close()
                raise

        def connect_anew() -> bool:
            self._made_anew = True  # rebuilt before it answers
            return connect()

        #: Whether the index holds every study (a rebuild ran since it was made).
        self.complete = opened_anew_when_damaged(self.path, connect, connect_anew)
        self._identity = file_identity(self.path)
        #: Whether substring searches have the trigram index (SQLite 3.34 or later).
        self.text_search = has_text_index(self._db)

    def _reopen(self) -> None:
        """Connect to the file now at :attr:`path`, to be rebuilt unless complete."""
        self._close_connections()
        self._open()
        self._made_anew = True

    def _follow(self, *, rebuilding: bool = False) -> None:
        """Before each use: reopened when another process made the file anew (a
        file removed by hand is not: the connections still read the old one),
        and a file made anew rebuilt first (unless another process did, or
        ``rebuilding`` is what the caller does next)."""
        identity = file_identity(self.path)
        if identity is not None and identity != self._identity:
            with self._recovering:
                if file_identity(self.path) != self._identity:
                    self._reopen()
        if rebuilding:
            self._made_anew = False
        elif self._made_anew:
            with self._recovering:
                if self._made_anew:
                    self._ensure_complete()
                    self._made_anew = False

    def close(self) -> None:
        self._close_connections()

    def _close_connections(self) -> None:
        while True:
            try:
                self._readers.get_nowait()[1].close()
            except queue.Empty:
                break
        self._db.close()

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read connection inside its own transaction, begun now, ended after."""
        identity, db = self._reader()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")
            self._readers.put((identity, db))

    def _reader(self) -> tuple[_Identity, sqlite3.Connection]:
        """A kept read connection of the current file (others closed), or a new one."""
        while True:
            try:
                identity, db = self._readers.get_nowait()
            except queue.Empty:
                break
            if identity == self._identity:
                return identity, db
            db.close()
        db = _connect(self.path)
        db.isolation_level = None
        return self._identity, db

    def __enter__(self) -> QidoIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building ---------------------------------------------------------------

    @_recovered
    def ensure_complete(self) -> None:
        """Rebuild the index unless it is complete."""
        self._follow()
        self._ensure_complete()

    def _ensure_complete(self) -> None:
        # Checked again under the write lock: processes finding the index
        # incomplete at once rebuild it once.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            found = self._db.execute("SELECT value FROM meta WHERE key = 'complete'").fetchone()
            if found is None or found[0] != "1":
                self._rebuild()  # in the transaction begun, committed at its end
        except BaseException:
            self._db.rollback()
            raise
        self._db.commit()
        self.complete = True

    @_recovered
    def rebuild(self) -> int:
        """Index every study of the archive afresh; returns the number of studies."""
        self._follow(rebuilding=True)
        return self._rebuild()

    def _rebuild(self) -> int:
        studies = self.archive.studies()
        with self.transaction():
            # The text index is made again once, from all rows: cheaper than
            # row by row through its triggers.
            for statement in TEXT_DROP:
                self._db.execute(statement)
            for table in TABLES:
                self._db.execute(f"DELETE FROM {table}")
            rows = FreshRows()
            for study, packed in studies.items():
                self._read_study(study, packed, rows)
                if len(rows) >= BATCH_ROWS:
                    self.insert(rows)
            self.insert(rows)
            if self.text_search:
                create_text_index(self._db)
                self._db.execute("INSERT INTO study_text (study_text) VALUES ('rebuild')")
            self._db.execute("UPDATE meta SET value = '1' WHERE key = 'complete'")
        self.complete = True
        return int(self._db.execute("SELECT count(*) FROM studies").fetchone()[0])

    @_recovered
    def study_row(self, study: str) -> JSONDataset | None:
        """The study's row as indexed (None: not indexed)."""
        self._follow()
        found = self._db.execute("SELECT row FROM studies WHERE study = ?", (study,)).fetchone()
        return None if found is None else orjson.loads(found[0])

    @_recovered
    def update_studies(self, studies: Iterable[str]) -> None:
        """Re-read the documents of ``studies`` (a study with none is dropped)."""
        self._follow()
        with self.transaction():
            for study in studies:
                self._delete_study(study)
                rows = FreshRows()
                self._read_study(study, None, rows)
                self.insert(rows)

    @_recovered
    def replace_studies(
        self,
        documents: Mapping[str, StudyDocuments | None],
        written: Mapping[str, list[Part]] | None = None,
    ) -> dict[str, list[Part]]:
        """Index studies from the documents just written for them, without
        reading them back (None: the study has no instances, it is dropped).

        Only the rows that changed are written (:mod:`~dicomweb_archive.store.indexrows`):
        found by the records' runs against those ``written`` last for a study
        by this process (none since by others), else by the rows' digests.
        Returns the runs' records written, by study.
        """
        self._follow()
        written = written or {}
        found: dict[str, list[Part]] = {}
        with self.transaction():
            for study, docs in documents.items():
                if docs is None:
                    self._delete_study(study)
                    continue
                self._db.execute("DELETE FROM studies WHERE study = ?", (study,))
                self._db.execute(STUDY_INSERT, study_values(study, docs.row, docs.shared))
                series, found[study] = study_records(docs)
                write_rows(self._db, "series", study, series)
                write_instance_rows(self._db, study, found[study], written.get(study))
        return found

    def _delete_study(self, study: str) -> None:
        for table in TABLES:
            self._db.execute(f"DELETE FROM {table} WHERE study = ?", (study,))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes committed together at the end, or not at all."""
        try:
            yield
        except BaseException:
            self._db.rollback()
            raise
        self._db.commit()

    def _read_study(self, study: str, packed: bool | None, rows: FreshRows) -> None:
        """Add the rows of a study's documents to ``rows``, read from its ZIP or
        folder (``packed``: which, as the archive was listed; None: not known)."""
        files: ReadableStore = self.archive.store
        if packed is not False:
            files = self.archive.study_zip(study) or files
        try:
            [row] = files.read_json_gz(paths.study_row(study))
        except ResourceNotFoundError:
            if packed is False and self.archive.study_zip(study) is not None:
                return self._read_study(study, True, rows)  # packed since it was listed
            return  # no study, or none of its instances committed yet
        series = [
            (one, files.read_json_gz(paths.instances_index(study, _series_uid(one))))
            for one in files.read_json_gz(paths.series_index(study))
        ]
        rows.add(study, row, files.read_json_gz(paths.deduplicated(study)), series)

    def insert(self, rows: FreshRows) -> None:
        """Write the rows kept in ``rows`` (of studies the index lacks), in the
        transaction under way; ``rows`` is emptied."""
        rows.write(self._db)

    # -- searching --------------------------------------------------------------

    @_recovered
    def search(self, level: Level, query: Query, budget: float | None = None) -> list[JSONDataset]:
        """Rows matching ``query`` in a stable order, with the asked attributes.

        Sees every row committed before it began.  Raises
        :class:`~dicomweb_archive.errors.QueryTimeoutError` after ``budget``
        seconds (:data:`SEARCH_BUDGET` unless told).
        """
        self._follow()
        budget = SEARCH_BUDGET if budget is None else budget
        tests: list[tuple[str, Matcher]] = [
            (tag.split(".")[0], path_matcher(tag.split("."), vr, value))
            for tag, vr, value in query.match
        ]
        tags_matched = {tag for tag, _ in tests}
        wanted = None if query.include is None else {*query.include, *tags_matched}
        deadline = time.monotonic() + budget
        results: list[JSONDataset] = []
        with self._snapshot() as db, contextlib.ExitStack() as cursors:
            candidates, skip = self._candidates(db, level, query, cursors)

            def read_attributes(rowid: int) -> JSONDataset:
                # Each level's attributes add to its parents' (study, series).
                attributes: JSONDataset = {}
                for blob in db.execute(_ATTRIBUTES[level], (rowid,)).fetchone() or ():
                    if blob is not None:
                        attributes.update(orjson.loads(blob))
                return attributes

            for row_blob, rowid, matched, extra in candidates:
                if time.monotonic() > deadline:
                    raise QueryTimeoutError(
                        f"the search took longer than {budget:g} s: narrow it down"
                    )
                # The row (small) holds most matching keys, with the values the
                # attributes (large) hold for them: the attributes are parsed only
                # for a key the row lacks, or to include what it lacks.
                row = orjson.loads(row_blob)
                attributes = None
                if not matched:
                    if not tags_matched <= row.keys():
                        attributes = read_attributes(rowid)
                    source = row if attributes is None else attributes
                    if not all(test(source.get(tag)) for tag, test in tests):
                        continue
                    if skip:
                        skip -= 1
                        continue
                missing = None if wanted is None else wanted - row.keys()
                if missing is None or missing:
                    if attributes is None and missing and extra and missing <= OFTEN_INCLUDED:
                        attributes = orjson.loads(extra)  # all of these the study has
                    elif attributes is None:
                        attributes = read_attributes(rowid)
                    for tag in set(attributes) if missing is None else missing:
                        if tag in attributes and tag not in row:
                            row[tag] = attributes[tag]
                    row = dict(sorted(row.items()))
                results.append(row)  # stored with sorted keys
                if query.limit is not None and len(results) >= query.limit:
                    break
        return results

    def _candidates(
        self, db: sqlite3.Connection, level: Level, query: Query, cursors: contextlib.ExitStack
    ) -> tuple[Iterator[tuple[bytes, int, bool, bytes | None]], int]:
        """The rows a search reads, in order: their JSON, rowid, whether known to
        match, and a study's :data:`OFTEN_INCLUDED` attributes (JSON); and how
        many of those not known to match it skips first."""

        def run(sql: str, args: list[str]) -> Iterator[Any]:
            cursor = cursors.enter_context(contextlib.closing(db.execute(sql, args)))
            return ((row, rowid, False, extra) for row, rowid, extra in cursor)

        if level is not Level.STUDY:
            sql, args = _statement(level, query)
            return run(sql, args), query.offset
        irregular = (
            "SELECT row, id, extra FROM studies WHERE irregular = 1 ORDER BY sort_key, study"
        )
        conditions, whole = study_conditions(query.match)
        if not whole:
            regular = study_candidates(db, conditions, self.text_search)
            found = ((row, rowid, False, extra) for row, rowid, extra in regular)
            return itertools.chain(found, run(irregular, [])), query.offset
        # SQL answers the regular rows, page and all; the matcher, the rest.
        ids = study_page(db, conditions, query.limit, query.offset, self.text_search)
        skip = 0
        if query.offset and not ids:
            skip = max(0, query.offset - count_studies(db, conditions, self.text_search))
        page = [(row, rowid, True, extra) for row, rowid, extra in rows_by_id(db, ids)]
        if query.limit is not None and len(ids) >= query.limit:
            return iter(page), 0
        return itertools.chain(page, run(irregular, [])), skip


#: A row's attributes with its parents', study first.
_ATTRIBUTES = {
    Level.STUDY: "SELECT attributes FROM studies WHERE rowid = ?",
    Level.SERIES: "SELECT studies.attributes, series.attributes FROM series "
    "LEFT JOIN studies ON studies.study = series.study WHERE series.rowid = ?",
    Level.INSTANCE: "SELECT studies.attributes, series.attributes, instances.attributes "
    "FROM instances LEFT JOIN series "
    "ON series.study = instances.study AND series.series = instances.series "
    "LEFT JOIN studies ON studies.study = instances.study WHERE instances.rowid = ?",
}


def _statement(level: Level, query: Query) -> tuple[str, list[str]]:
    """The SQL reading a series or instance search's candidate rows, in the level's order."""
    where, args = [], []
    if query.study:
        where.append("study = ?")
        args.append(query.study)
    if query.series and level is Level.INSTANCE:
        where.append("series = ?")
        args.append(query.series)
    sql = f"SELECT row, rowid, NULL FROM {level.value}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    key = "series" if level is Level.SERIES else "sop"
    return f"{sql} ORDER BY sort_key, {key}", args
