"""An SQLite index of an archive's QIDO-RS rows: derived, rebuildable, disposable.

The archive's own documents stay the truth; the index only makes queries fast.
Deleting it loses nothing: :meth:`QidoIndex.rebuild` reads every study's
documents again.  Rows are kept as the DICOM JSON the archive serves, next to
the attributes a query may match or include at their level: for a study, the
study row and every attribute shared by all its instances; for a series, the
series row with its study's attributes; for an instance, its row with both.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import orjson

from dicomweb_archive import tags
from dicomweb_archive.errors import QueryTimeoutError, StoreError
from dicomweb_archive.model import paths
from dicomweb_archive.model.aggregate import study_sort_key
from dicomweb_archive.model.matching import Matcher, path_matcher
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.types import JSONDataset, first_value

INDEX_FILE = "index.sqlite"
#: Where the index is, in the archive's work folder.
INDEX_PATH = f"{paths.WORK_DIR}/{INDEX_FILE}"
#: Longest a search may run before it gives up (seconds): a query that costs
#: more is refused rather than holding a worker and the database.
SEARCH_BUDGET = 5.0
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS studies (
    study TEXT PRIMARY KEY, sort_key TEXT NOT NULL, row BLOB NOT NULL, attributes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS series (
    series TEXT NOT NULL, study TEXT NOT NULL, sort_key TEXT NOT NULL,
    row BLOB NOT NULL, attributes BLOB NOT NULL, PRIMARY KEY (study, series)
);
CREATE TABLE IF NOT EXISTS instances (
    sop TEXT NOT NULL, series TEXT NOT NULL, study TEXT NOT NULL, sort_key TEXT NOT NULL,
    row BLOB NOT NULL, attributes BLOB NOT NULL, PRIMARY KEY (study, series, sop)
);
CREATE INDEX IF NOT EXISTS studies_order ON studies (sort_key, study);
CREATE INDEX IF NOT EXISTS series_order ON series (study, sort_key, series);
CREATE INDEX IF NOT EXISTS instances_order ON instances (study, series, sort_key, sop);
"""


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


def _number_key(value: Any) -> str:
    return f"{float(value):020.6f}" if isinstance(value, int | float) else "~"


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
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(_SCHEMA_VERSION),))
        self._db.commit()
        # Searches read through connections of their own, one at a time each:
        # a connection shared between threads keeps the snapshot of whichever
        # statement is still open on it, so a search could miss a row committed
        # before it began.
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()

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
        with self._transaction():
            for table in ("studies", "series", "instances"):
                self._db.execute(f"DELETE FROM {table}")
            for study in studies:
                self._index_study(study)
        return int(self._db.execute("SELECT count(*) FROM studies").fetchone()[0])

    def update_studies(self, studies: Iterable[str]) -> None:
        """Re-read the documents of ``studies`` (a study with none is dropped)."""
        with self._transaction():
            for study in studies:
                for table in ("studies", "series", "instances"):
                    self._db.execute(f"DELETE FROM {table} WHERE study = ?", (study,))
                self._index_study(study)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self._db.rollback()
            raise
        self._db.commit()

    def _index_study(self, study: str) -> None:
        files = self.archive
        if not files.has_study(study) or not files.exists(paths.study_row(study)):
            return
        [row] = files.read_json_gz(paths.study_row(study))
        dedup = files.read_json_gz(paths.deduplicated(study))
        study_attributes = {**dedup["study"], **row}
        self._db.execute(
            "INSERT INTO studies VALUES (?, ?, ?, ?)",
            (
                study,
                "|".join(study_sort_key(row)),
                orjson.dumps(row),
                orjson.dumps(study_attributes),
            ),
        )
        for series_row in files.read_json_gz(paths.series_index(study)):
            series = str(first_value(series_row, tags.SeriesInstanceUID))
            series_attributes = {
                **study_attributes,
                **dedup["series"].get(series, {}),
                **series_row,
            }
            self._db.execute(
                "INSERT INTO series VALUES (?, ?, ?, ?, ?)",
                (
                    series,
                    study,
                    f"{_number_key(first_value(series_row, '00200011'))}|{series}",
                    orjson.dumps(series_row),
                    orjson.dumps(series_attributes),
                ),
            )
            for instance_row in files.read_json_gz(paths.instances_index(study, series)):
                sop = str(first_value(instance_row, tags.SOPInstanceUID))
                own = dedup["instances"].get(sop, {}).get("attributes", {})
                self._db.execute(
                    "INSERT INTO instances VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        sop,
                        series,
                        study,
                        f"{_number_key(first_value(instance_row, '00200013'))}|{sop}",
                        orjson.dumps(instance_row),
                        orjson.dumps({**series_attributes, **own, **instance_row}),
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
        table = level.value
        sql = f"SELECT row, rowid FROM {table}"
        where, args = [], []
        if query.study and level is not Level.STUDY:
            where.append("study = ?")
            args.append(query.study)
        if query.series and level is Level.INSTANCE:
            where.append("series = ?")
            args.append(query.series)
        if where:
            sql += " WHERE " + " AND ".join(where)
        key = {"studies": "study", "series": "series", "instances": "sop"}[table]
        sql += f" ORDER BY sort_key, {key}"
        tests: list[tuple[str, Matcher]] = [
            (tag.split(".")[0], path_matcher(tag.split("."), vr, value))
            for tag, vr, value in query.match
        ]
        tags_matched = {tag for tag, _ in tests}
        deadline = time.monotonic() + budget
        results: list[JSONDataset] = []
        skipped = 0
        with self._snapshot() as db, contextlib.closing(db.execute(sql, args)) as cursor:

            def read_attributes(rowid: int) -> JSONDataset:
                select = f"SELECT attributes FROM {table} WHERE rowid = ?"
                attributes: JSONDataset = orjson.loads(db.execute(select, (rowid,)).fetchone()[0])
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
