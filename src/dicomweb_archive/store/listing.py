"""The archive's study list for static hosts, in pages rewritten only where they change.

A static host answers ``/studies`` with one stored file, and the whole list of a
large archive is too large to rewrite at every flush (40 MB gzipped at 10^6
studies).  So each study is given a *slot* when it is first listed (one more
than the highest in use; the studies first listed by one flush get theirs in
study order: date, time, UID), keeps it until it is deleted, and:

``studies/index.json.gz``
    What a static host serves at ``/studies``: the studies of the newest
    :data:`PAGE_SIZE` slots, in study order.  Up to :data:`PAGE_SIZE` studies that
    is every study, as a single list always was.
``studies/pages/{n}.json.gz``
    Written once the list has held more than :data:`PAGE_SIZE` studies: page
    ``n`` holds the studies whose slots are in ``[n × P, (n + 1) × P)``, in study
    order (a page whose studies are all deleted holds ``[]``).  Together they
    are the full list.  Full search is QIDO-RS from the SQLite index (``dwa serve``).

A flush rewrites the pages of the studies it lists, delists or changes, and
``index.json.gz``: its cost and memory grow with those studies times
:data:`PAGE_SIZE`, never with the archive.  Which page holds a study depends on
when it was first listed; ``index.json.gz`` of an archive of up to
:data:`PAGE_SIZE` studies does not.

The slots and rows are kept in ``.dwa/listing.sqlite`` (derived, disposable:
without it, or at another page size, the next update rebuilds it from every
study's row and renumbers the pages in study order, as :meth:`StudyList.rebuild`
does for ``dwa index``).  An update records its changes and the pages they
touch in one transaction, then writes those pages and forgets them; a kill in
between leaves the pages recorded, and the next update writes them.

The record is written without syncing, as every other file of the archive is:
a transaction survives a killed process, not a power failure.  Synced, the
first commit after a conversion waited for the file system to commit every
file the conversion wrote (on a journaled ext4, 30-600 ms of a 3 s
conversion of 3,000 slices).  A record a power failure left damaged is
dropped when found so (:mod:`~dicomweb_archive.store.sqlerrors`), and made
again as a missing one is: the catalog's update then runs once more.
"""

from __future__ import annotations

import contextlib
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator

from dicomweb_archive import tags
from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import dumps_json, gzip_bytes
from dicomweb_archive.store.sqlerrors import (
    database_errors,
    opened_anew_when_damaged,
    remove_database,
)
from dicomweb_archive.types import JSONDataset, first_value

#: Studies a page holds at most; also how many ``studies/index.json.gz`` shows.
PAGE_SIZE = 1000
LISTING_PATH = f"{paths.WORK_DIR}/listing.sqlite"
#: Pseudo page numbers recorded with the pages to write: ``index.json.gz``, and
#: the removal of pages past the last (after a renumbering).
NEWEST, PRUNE = -1, -2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS listed (
    study TEXT PRIMARY KEY, slot INTEGER UNIQUE,
    date TEXT NOT NULL, time TEXT NOT NULL, row BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS unwritten (page INTEGER PRIMARY KEY);
"""
_ORDER = "ORDER BY date, time, study"

#: The row of a study (None: it has none, it is not listed).
RowOf = Callable[[str], JSONDataset | None]


def _drop(listing: StudyList) -> None:
    """Close and delete a damaged record: the next update makes it anew."""
    listing.close()
    if listing.local is not None:
        remove_database(listing.local)


_database_errors = database_errors(LISTING_PATH, _drop)


class StudyList:
    """The study list of ``archive``; see the module.  Callers hold the
    archive's ``studies-index`` lock while they use it."""

    @database_errors(LISTING_PATH)
    def __init__(self, archive: Archive) -> None:
        self.archive = archive
        self.page_size = PAGE_SIZE
        local = archive.store.local_path(LISTING_PATH)
        if local is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
        #: The record's file (None: a store without local files, which starts
        #: from the published list each time).
        self.local = local
        opened = self._open() if local is None else opened_anew_when_damaged(local, self._open)
        #: Whether the record holds every study at this page size.
        self._db, self.complete = opened

    def _open(self) -> tuple[sqlite3.Connection, bool]:
        """The record's connection and whether it holds every study at this page
        size; the tables are read whole, so a damaged file is found here."""
        where = ":memory:" if self.local is None else str(self.local)
        db = sqlite3.connect(where, timeout=60, isolation_level=None)
        try:
            # Small pages (of a new file): a small archive's record takes a few KB.
            db.execute("PRAGMA page_size = 1024")
            # The rollback journal emptied after each transaction, not made and
            # deleted (a file creation costs up to a few hundred µs on ext4 without
            # a journal after many deletions); just as safe, and read the same way
            # by a connection in the default mode.
            db.execute("PRAGMA journal_mode = TRUNCATE")
            db.execute("PRAGMA synchronous = OFF")  # see the module
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM listed").fetchone()
            found = db.execute("SELECT value FROM meta WHERE key = 'pageSize'").fetchone()
        except BaseException:
            db.close()
            raise
        return db, found is not None and found[0] == str(self.page_size)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StudyList:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._db.in_transaction:  # SQLite rolls back itself on some errors
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- recording changes ----------------------------------------------------------

    @_database_errors
    def update(self, studies: Iterable[str], row_of: RowOf) -> None:
        """Record the rows of ``studies`` (no row: delisted), then write the pages
        they are on and ``index.json.gz``.

        An unchanged row leaves the record untouched (a rerun changes not a byte
        of it); its page is written again all the same, in case it was lost.
        """
        db = self._db
        again: set[int] = set()
        try:
            for study in studies:
                unchanged = self._record(study, row_of(study))
                if unchanged is not None:
                    again.update((unchanged // self.page_size, NEWEST))
            if db.in_transaction:
                self._give_slots(db)
                db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if not self.archive.store.exists(paths.STUDIES_INDEX):
            again.add(NEWEST)
        self.write_pages(again)

    def _record(self, study: str, row: JSONDataset | None) -> int | None:
        """Record one study's row, in the update's transaction (begun here on the
        first change); returns the study's slot when its row is unchanged."""
        db = self._db
        found = db.execute("SELECT slot, row FROM listed WHERE study = ?", (study,)).fetchone()
        data = None if row is None else dumps_json(row)
        if found is not None and found[1] == data:
            return int(found[0])
        if found is None and row is None:
            return None
        if not db.in_transaction:
            db.execute("BEGIN IMMEDIATE")
        if row is None:
            db.execute("DELETE FROM listed WHERE study = ?", (study,))
            self._touch(db, found[0])
        elif found is None:  # given its slot with the other new ones
            db.execute("INSERT INTO listed VALUES (?, NULL, ?, ?, ?)", (study, *_order(row), data))
        else:
            db.execute(
                "UPDATE listed SET date = ?, time = ?, row = ? WHERE study = ?",
                (*_order(row), data, study),
            )
            self._touch(db, found[0])
        return None

    def _give_slots(self, db: sqlite3.Connection) -> None:
        """Slots for the studies listed first now, after the highest, in study order."""
        (highest,) = db.execute("SELECT max(slot) FROM listed").fetchone()
        slot = -1 if highest is None else int(highest)
        new = db.execute(f"SELECT study FROM listed WHERE slot IS NULL {_ORDER}").fetchall()
        for (study,) in new:
            slot += 1
            db.execute("UPDATE listed SET slot = ? WHERE study = ?", (slot, study))
            self._touch(db, slot)
        if slot >= self.page_size and not self._paged():
            # The list outgrew index.json.gz: from now on the pages are written,
            # all of them this once.
            db.execute("INSERT OR REPLACE INTO meta VALUES ('paged', '1')")
            pages = range(slot // self.page_size + 1)
            db.executemany("INSERT OR IGNORE INTO unwritten VALUES (?)", [(p,) for p in pages])

    def _paged(self) -> bool:
        """Whether the list has pages: it has held more than :data:`PAGE_SIZE` slots
        (until a rebuild finds fewer)."""
        return self._db.execute("SELECT 1 FROM meta WHERE key = 'paged'").fetchone() is not None

    def _touch(self, db: sqlite3.Connection, slot: int) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO unwritten VALUES (?)", [(slot // self.page_size,), (NEWEST,)]
        )

    @_database_errors
    def rebuild(self, row_of: RowOf) -> int:
        """Record every study afresh, renumbered in study order, and write every
        page; returns the number of studies listed."""
        with self._transaction() as db:
            db.execute("DELETE FROM listed")
            db.execute("DELETE FROM unwritten")
            db.execute("DELETE FROM meta WHERE key = 'paged'")
            for study in self.archive.study_uids():
                row = row_of(study)
                if row is not None:
                    db.execute(
                        "INSERT INTO listed VALUES (?, NULL, ?, ?, ?)",
                        (study, *_order(row), dumps_json(row)),
                    )
            self._give_slots(db)
            db.executemany("INSERT OR IGNORE INTO unwritten VALUES (?)", [(NEWEST,), (PRUNE,)])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('pageSize', ?)", (str(self.page_size),))
        self.complete = True
        self.write_pages()
        return int(self._db.execute("SELECT count(*) FROM listed").fetchone()[0])

    @_database_errors
    def adopt(self) -> bool:
        """Take the published list (pages, else ``index.json.gz``) as the record,
        slots by page; False, and nothing changed, when there is none or a page
        holds more than a page's studies (then :meth:`rebuild`).

        What another process or machine listed is kept (``dwa push`` into a
        bucket others push to), reading one page at a time.
        """
        store, size = self.archive.store, self.page_size
        try:
            with self._transaction() as db:
                db.execute("DELETE FROM listed")
                db.execute("DELETE FROM unwritten")
                db.execute("DELETE FROM meta WHERE key = 'paged'")
                page = 0
                while store.exists(paths.study_list_page(page)):
                    self._adopt_page(db, paths.study_list_page(page), page * size)
                    page += 1
                if page:
                    db.execute("INSERT INTO meta VALUES ('paged', '1')")
                else:
                    self._adopt_page(db, paths.STUDIES_INDEX, 0)
                db.execute("INSERT OR IGNORE INTO unwritten VALUES (?)", (NEWEST,))
                db.execute("INSERT OR REPLACE INTO meta VALUES ('pageSize', ?)", (str(size),))
        except _NotAdoptable:
            return False
        self.complete = True
        return True

    def _adopt_page(self, db: sqlite3.Connection, path: str, first: int) -> None:
        try:
            rows = self.archive.store.read_json_gz(path)
        except (ResourceNotFoundError, ValueError, OSError, EOFError, zlib.error) as exc:
            raise _NotAdoptable(path) from exc
        if not isinstance(rows, list) or len(rows) > self.page_size:
            raise _NotAdoptable(path)
        db.executemany(
            "INSERT OR REPLACE INTO listed VALUES (?, ?, ?, ?, ?)",
            [(_uid(row), first + n, *_order(row), dumps_json(row)) for n, row in enumerate(rows)],
        )

    # -- writing --------------------------------------------------------------------

    @_database_errors
    def write_pages(self, again: Iterable[int] = ()) -> None:
        """Write the pages recorded as changed (then forget them) and ``again``."""
        db, store, size = self._db, self.archive.store, self.page_size
        recorded = [page for (page,) in db.execute("SELECT page FROM unwritten")]
        paged = self._paged()
        for page in sorted({*recorded, *again}, reverse=True):
            if page >= 0 and not paged:
                continue  # index.json.gz holds every study
            if page == PRUNE:
                self._prune()
            elif page == NEWEST:
                rows = db.execute(
                    "SELECT row FROM (SELECT row, date, time, study FROM listed "
                    f"ORDER BY slot DESC LIMIT ?) {_ORDER}",
                    (size,),
                )
                store.write(paths.STUDIES_INDEX, _list(rows))
            else:
                rows = db.execute(
                    f"SELECT row FROM listed WHERE slot >= ? AND slot < ? {_ORDER}",
                    (page * size, (page + 1) * size),
                )
                store.write(paths.study_list_page(page), _list(rows))
        if recorded:
            with self._transaction():
                db.executemany("DELETE FROM unwritten WHERE page = ?", [(p,) for p in recorded])

    def _prune(self) -> None:
        """Remove the pages past the last one (left by an earlier numbering)."""
        (highest,) = self._db.execute("SELECT max(slot) FROM listed").fetchone()
        pages = int(highest) // self.page_size + 1 if self._paged() and highest is not None else 0
        try:
            entries = self.archive.store.list(paths.STUDY_LIST_PAGES)
        except ResourceNotFoundError:
            return
        for entry in entries:
            number = entry.name.removesuffix(".json.gz")
            if not entry.is_folder and number.isdigit() and int(number) >= pages:
                self.archive.store.remove(f"{paths.STUDY_LIST_PAGES}/{entry.name}")


class _NotAdoptable(Exception):
    """A published list that cannot be the record: missing, unreadable, or
    with more studies than a page."""


def _uid(row: JSONDataset) -> str:
    return str(first_value(row, tags.StudyInstanceUID))


def _order(row: JSONDataset) -> tuple[str, str]:
    return (
        str(first_value(row, tags.StudyDate) or ""),
        str(first_value(row, tags.StudyTime) or ""),
    )


def _list(rows: Iterable[tuple[bytes]]) -> bytes:
    """Gzipped JSON of the rows, as :func:`~dicomweb_archive.store.base.dumps_json`
    writes a list of them."""
    return gzip_bytes(b"[" + b",".join(row for (row,) in rows) + b"]")
