"""An SQLite index of an archive's QIDO-RS rows: derived, rebuildable, disposable.

The archive's own documents stay the truth; the index only makes queries fast.
Deleting it loses nothing: :meth:`QidoIndex.rebuild` reads every study's
documents again.  Rows are kept as the DICOM JSON the archive serves, next to
the attributes a query may match or include at their level: for a study, the
study row and every attribute shared by all its instances; for a series, the
series row with its study's attributes; for an instance, its row with both
(each level stored with what it adds to its parents, merged when read:
:mod:`~dicomweb_archive.store.indexrows`).
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import sqlite3
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
from dicomweb_archive.model.aggregate import StudyDocuments, study_sort_key
from dicomweb_archive.model.matching import Matcher, path_matcher
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import ReadableStore, dumps_json
from dicomweb_archive.store.columns import STUDY_COLUMNS, is_irregular, study_conditions
from dicomweb_archive.store.indexrows import (
    Record,
    instance_record,
    series_record,
    study_records,
    write_rows,
)
from dicomweb_archive.types import JSONDataset, first_value

INDEX_FILE = "index.sqlite"
#: Where the index is, in the archive's work folder.
INDEX_PATH = f"{paths.WORK_DIR}/{INDEX_FILE}"
#: Longest a search may run before it gives up (seconds): a query that costs
#: more is refused rather than holding a worker and the database.
SEARCH_BUDGET = 5.0
#: Bumped whenever the tables change: an index of another version is rebuilt.
SCHEMA_VERSION = 3
_TABLES = ("studies", "series", "instances")
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS studies (
    study TEXT PRIMARY KEY, sort_key TEXT NOT NULL, row BLOB NOT NULL, attributes BLOB NOT NULL,
    irregular INTEGER NOT NULL, {", ".join(f"{column.name} TEXT" for column in STUDY_COLUMNS)}
);
CREATE TABLE IF NOT EXISTS series (
    series TEXT NOT NULL, study TEXT NOT NULL, sort_key TEXT NOT NULL, digest BLOB NOT NULL,
    row BLOB NOT NULL, attributes BLOB NOT NULL, PRIMARY KEY (study, series)
);
CREATE TABLE IF NOT EXISTS instances (
    sop TEXT NOT NULL, series TEXT NOT NULL, study TEXT NOT NULL, sort_key TEXT NOT NULL,
    -- Before the blobs: read without reading them (a refresh compares digests).
    digest BLOB NOT NULL, row BLOB NOT NULL, attributes BLOB NOT NULL,
    PRIMARY KEY (study, series, sop)
);
CREATE INDEX IF NOT EXISTS studies_order ON studies (irregular, sort_key, study);
CREATE INDEX IF NOT EXISTS series_order ON series (study, sort_key, series);
CREATE INDEX IF NOT EXISTS instances_order ON instances (study, series, sort_key, sop);
""" + "".join(
    # In the study order after the value: the page of an equal value is read in order.
    f"CREATE INDEX IF NOT EXISTS studies_{column.name} "
    f"ON studies ({column.name}, irregular, sort_key, study);\n"
    for column in STUDY_COLUMNS
    if not column.many
)


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


def _series_uid(row: JSONDataset) -> str:
    return str(first_value(row, tags.SeriesInstanceUID))


class QidoIndex:
    """The index of ``archive``, in ``.dwa/index.sqlite`` unless told otherwise."""

    def __init__(self, archive: Archive, path: str | Path | None = None) -> None:
        self.archive = archive
        local = Path(path) if path else archive.store.local_path(INDEX_PATH)
        if local is None:
            raise StoreError(f"{archive.url}: the QIDO-RS index needs a local work folder")
        self.path = local
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        #: Whether the index holds every study (a rebuild ran since it was made).
        self.complete = self._migrate()
        # Searches read through connections of their own, one at a time each:
        # a connection shared between threads keeps the snapshot of whichever
        # statement is still open on it, so a search could miss a row committed
        # before it began.
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()

    def _migrate(self) -> bool:
        """Make the tables, dropping those of another schema version; returns :attr:`complete`.

        One process at a time (an immediate transaction), so two servers
        opening an index of an older version drop it once.
        """
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        with self.transaction():
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if version is not None and version[0] != str(SCHEMA_VERSION):
                for table in _TABLES:
                    db.execute(f"DROP TABLE IF EXISTS {table}")
                db.execute("DELETE FROM meta")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            db.execute("INSERT OR IGNORE INTO meta VALUES ('complete', '0')")
            complete = db.execute("SELECT value FROM meta WHERE key = 'complete'").fetchone()
        return bool(complete[0] == "1")

    def close(self) -> None:
        while True:
            try:
                self._readers.get_nowait().close()
            except queue.Empty:
                break
        self._db.close()

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read connection inside its own transaction, begun now, ended after."""
        try:
            db = self._readers.get_nowait()
        except queue.Empty:
            db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
            db.isolation_level = None
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")
            self._readers.put(db)

    def __enter__(self) -> QidoIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- building ---------------------------------------------------------------

    def rebuild(self) -> int:
        """Index every study of the archive afresh; returns the number of studies."""
        studies = self.archive.study_uids()
        with self.transaction():
            for table in _TABLES:
                self._db.execute(f"DELETE FROM {table}")
            for study in studies:
                self._index_study(study)
            self._db.execute("UPDATE meta SET value = '1' WHERE key = 'complete'")
        self.complete = True
        return int(self._db.execute("SELECT count(*) FROM studies").fetchone()[0])

    def update_studies(self, studies: Iterable[str]) -> None:
        """Re-read the documents of ``studies`` (a study with none is dropped)."""
        with self.transaction():
            for study in studies:
                self._delete_study(study)
                self._index_study(study)

    def replace_studies(self, documents: Mapping[str, StudyDocuments | None]) -> None:
        """Index studies from the documents just written for them, without
        reading them back (None: the study has no instances, it is dropped).

        Only the rows that changed are written (:mod:`~dicomweb_archive.store.indexrows`).
        """
        with self.transaction():
            for study, docs in documents.items():
                if docs is None:
                    self._delete_study(study)
                    continue
                self._db.execute("DELETE FROM studies WHERE study = ?", (study,))
                self._insert_study_row(study, docs.row, docs.deduplicated)
                series, instances = study_records(docs)
                write_rows(self._db, "series", study, series)
                write_rows(self._db, "instances", study, instances)

    def _delete_study(self, study: str) -> None:
        for table in _TABLES:
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

    def _index_study(self, study: str) -> None:
        # Where the study is, found once: not once per document read.
        files: ReadableStore = self.archive.study_zip(study) or self.archive.store
        try:
            [row] = files.read_json_gz(paths.study_row(study))
        except ResourceNotFoundError:
            return  # no study, or none of its instances committed yet
        series = (
            (one, files.read_json_gz(paths.instances_index(study, _series_uid(one))))
            for one in files.read_json_gz(paths.series_index(study))
        )
        self.insert_study(study, row, files.read_json_gz(paths.deduplicated(study)), series)

    def insert_study(
        self,
        study: str,
        row: JSONDataset,
        deduplicated: dict[str, Any],
        series: Iterable[tuple[JSONDataset, list[JSONDataset]]],
    ) -> None:
        """Add one study's rows from its documents: its row, its deduplicated
        document, and each series' row with its instances' rows."""
        dedup = deduplicated
        self._insert_study_row(study, row, dedup)
        series_records: dict[tuple[str, ...], Record] = {}
        instance_records: dict[tuple[str, ...], Record] = {}
        for series_row, instance_rows in series:
            uid = _series_uid(series_row)
            series_records[uid,] = series_record(series_row, dedup["series"].get(uid, {}))
            for instance_row in instance_rows:
                sop = str(first_value(instance_row, tags.SOPInstanceUID))
                own = dedup["instances"].get(sop, {}).get("attributes", {})
                instance_records[uid, sop] = instance_record(instance_row, own)
        write_rows(self._db, "series", study, series_records, fresh=True)
        write_rows(self._db, "instances", study, instance_records, fresh=True)

    def _insert_study_row(self, study: str, row: JSONDataset, dedup: dict[str, Any]) -> None:
        study_attributes = {**dedup["study"], **row}
        columns = [column.value(study_attributes) for column in STUDY_COLUMNS]
        self._db.execute(
            f"INSERT INTO studies VALUES (?, ?, ?, ?, ?{', ?' * len(columns)})",
            (
                study,
                "|".join(study_sort_key(row)),
                dumps_json(row),
                dumps_json(study_attributes),
                int(is_irregular(study_attributes, columns)),
                *columns,
            ),
        )

    # -- searching --------------------------------------------------------------

    def search(self, level: Level, query: Query, budget: float | None = None) -> list[JSONDataset]:
        """Rows matching ``query`` in a stable order, with the asked attributes.

        Sees every row committed before it began.  Raises
        :class:`~dicomweb_archive.errors.QueryTimeoutError` after ``budget``
        seconds (:data:`SEARCH_BUDGET` unless told).
        """
        budget = SEARCH_BUDGET if budget is None else budget
        tests: list[tuple[str, Matcher]] = [
            (tag.split(".")[0], path_matcher(tag.split("."), vr, value))
            for tag, vr, value in query.match
        ]
        tags_matched = {tag for tag, _ in tests}
        deadline = time.monotonic() + budget
        results: list[JSONDataset] = []
        skipped = 0
        with self._snapshot() as db, contextlib.ExitStack() as cursors:
            cursor = itertools.chain.from_iterable(
                cursors.enter_context(contextlib.closing(db.execute(sql, args)))
                for sql, args in _statements(level, query)
            )

            def read_attributes(rowid: int) -> JSONDataset:
                # Each level's attributes add to its parents' (study, series).
                attributes: JSONDataset = {}
                for blob in db.execute(_ATTRIBUTES[level], (rowid,)).fetchone() or ():
                    if blob is not None:
                        attributes.update(orjson.loads(blob))
                return attributes

            for row_blob, rowid in cursor:
                if time.monotonic() > deadline:
                    raise QueryTimeoutError(
                        f"the search took longer than {budget:g} s: narrow it down"
                    )
                # The row (small) holds most matching keys, with the values the
                # attributes (large) hold for them: the attributes are parsed only
                # for a key the row lacks, or to include what it lacks.
                row = orjson.loads(row_blob)
                attributes = None if tags_matched <= row.keys() else read_attributes(rowid)
                source = row if attributes is None else attributes
                if not all(test(source.get(tag)) for tag, test in tests):
                    continue
                if skipped < query.offset:
                    skipped += 1
                    continue
                wanted = None if query.include is None else {*query.include, *tags_matched}
                if wanted is None or not wanted <= row.keys():
                    if attributes is None:
                        attributes = read_attributes(rowid)
                    for tag in set(attributes) if wanted is None else wanted:
                        if tag in attributes and tag not in row:
                            row[tag] = attributes[tag]
                results.append(dict(sorted(row.items())))
                if query.limit is not None and len(results) >= query.limit:
                    break
        return results


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


def _statements(level: Level, query: Query) -> list[tuple[str, list[str]]]:
    """The SQL reading a search's candidate rows, in the level's order.

    Studies come in two runs of the one order: the regular ones, narrowed by
    their columns, then the irregular ones (:mod:`~dicomweb_archive.store.columns`).
    """
    if level is Level.STUDY:
        where, args = study_conditions(query.match)
        order = "ORDER BY irregular, sort_key, study"
        regular = " AND ".join(["irregular = 0", *where])
        return [
            (f"SELECT row, rowid FROM studies WHERE {regular} {order}", args),
            (f"SELECT row, rowid FROM studies WHERE irregular = 1 {order}", []),
        ]
    where, args = [], []
    if query.study:
        where.append("study = ?")
        args.append(query.study)
    if query.series and level is Level.INSTANCE:
        where.append("series = ?")
        args.append(query.series)
    sql = f"SELECT row, rowid FROM {level.value}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    key = "series" if level is Level.SERIES else "sop"
    return [(f"{sql} ORDER BY sort_key, {key}", args)]
