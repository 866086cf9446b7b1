"""Which index finds the rows of a study search, chosen per search.

SQLite's planner, without statistics, walks the study order's index for any
search ordered by it, even when a column's index would find the few matching
rows at once (a prefix PatientID took 70-250 ms at 100,000 studies).  So the
choice is made here, each statement naming its index (``INDEXED BY``):

* a key naming one value (a PatientID, a StudyInstanceUID) is looked up in its
  column's index, and its few rows sorted into the study order;
* a prefix whose index holds fewer than :data:`FEW` matches (counted in the
  index, up to that) is looked up at once, its rows sorted;
* otherwise the study order is walked first (within the date range, when the
  search has one), for at most :data:`WALK` rows per row wanted: when matches
  are common the page fills there, in order, without sorting anything;
* when it does not, matches are rare: they are looked up in the index of a
  prefix (a range of the column's index) or of a substring (the trigram text
  index, ``study_text``) and sorted;
* a search with no key any index finds walks the study order to its page.

Every statement here reads only regular rows (:mod:`~dicomweb_archive.store.columns`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

from dicomweb_archive.store.columns import STUDY_COLUMNS, Condition

#: Rows of the study order walked per row wanted before looking matches up instead.
WALK = 20
#: Fewest rows walked (a page of 100 matches one study in 20 or more).
MIN_WALK = 2_000
#: Matches a look-up sorts at most when a search is left partly to the matcher.
PROBE = 5_000
#: Fewer matches in a prefix's index than this are looked up without a walk
#: (which, in a large archive, would walk its rows in vain).
FEW = 256
_ORDER = "ORDER BY sort_key, study"
#: The study order's index covers the columns: a walk reads no table row.
_COLUMNS = ", ".join(column.name for column in STUDY_COLUMNS)


def _where(conditions: Sequence[Condition]) -> tuple[str, list[str]]:
    terms = ["irregular = 0", *(f"({c.sql})" for c in conditions)]
    return " AND ".join(terms), [arg for c in conditions for arg in c.args]


def _select(
    what: str, driver: Condition | None, conditions: Sequence[Condition]
) -> tuple[str, list[str]]:
    """A ``SELECT`` of the regular rows matching ``conditions``, through the
    driver's index (None, or a range of the order: the study order's)."""
    where, args = _where(conditions)
    if driver is not None and driver.index is None and driver.text is not None:
        # The text index gives candidate ids; the conditions still decide.
        column, pattern = driver.text
        found = f"SELECT rowid FROM study_text WHERE {column} GLOB ?"
        sql = f"SELECT {what} FROM studies NOT INDEXED WHERE id IN ({found}) AND {where}"
        return sql, [pattern, *args]
    index = driver.index if driver is not None and driver.index else "studies_order"
    return f"SELECT {what} FROM studies INDEXED BY {index} WHERE {where}", args


def _lookups(conditions: Sequence[Condition], text_search: bool) -> list[Condition]:
    """The conditions an index finds the rows of, cheapest first."""
    usable = [c for c in conditions if c.index is not None or (text_search and c.text)]
    return sorted(usable, key=lambda c: (not c.selective, c.index is None))


def study_page(
    db: sqlite3.Connection,
    conditions: Sequence[Condition],
    limit: int | None,
    offset: int,
    text_search: bool,
) -> list[int]:
    """The ids of the regular rows matching every condition, in the study order,
    ``offset`` of them skipped and at most ``limit`` (None: all) given."""
    page = f"LIMIT {-1 if limit is None else limit} OFFSET {offset}"
    lookups = _lookups(conditions, text_search)
    if lookups and not lookups[0].selective and limit is not None and not _few(db, lookups[0]):
        rows = max(WALK * (limit + offset), MIN_WALK)
        walked = _walk(db, conditions, rows, page)
        if len(walked) >= limit or _order_rows(db, conditions, rows + 1) <= rows:
            return walked  # the page is full, or the walk saw every candidate
    driver = lookups[0] if lookups else None
    sql, args = _select("id", driver, conditions)
    return [id_ for (id_,) in db.execute(f"{sql} {_ORDER} {page}", args)]


def _few(db: sqlite3.Connection, lookup: Condition) -> bool:
    """Whether the index of ``lookup`` (a range of a column's) holds fewer than
    :data:`FEW` rows it matches: counted in the index, up to that many."""
    if lookup.index is None:
        return False  # a substring: its text index's look-up costs as much as a walk
    sql, args = _select("1", lookup, [lookup])
    return bool(db.execute(f"SELECT count(*) < {FEW} FROM ({sql} LIMIT {FEW})", args).fetchone()[0])


def _walk(
    db: sqlite3.Connection, conditions: Sequence[Condition], rows: int, page: str
) -> list[int]:
    """The page among the first ``rows`` of the study order (within the search's
    date range): the matches there, in order."""
    where, args = _where([c for c in conditions if c.order])
    walked = (
        f"SELECT id, study, {_COLUMNS} FROM studies INDEXED BY studies_order "
        f"WHERE {where} {_ORDER} LIMIT {rows}"
    )
    tests = [f"({c.sql})" for c in conditions if not c.order]
    sql = f"SELECT id FROM ({walked})" + (" WHERE " + " AND ".join(tests) if tests else "")
    args += [arg for c in conditions if not c.order for arg in c.args]
    return [id_ for (id_,) in db.execute(f"{sql} {page}", args)]


def _order_rows(db: sqlite3.Connection, conditions: Sequence[Condition], most: int) -> int:
    """How many rows of the study order the search's date range holds, up to ``most``."""
    where, args = _where([c for c in conditions if c.order])
    sql = f"SELECT 1 FROM studies INDEXED BY studies_order WHERE {where} LIMIT {most}"
    return int(db.execute(f"SELECT count(*) FROM ({sql})", args).fetchone()[0])


def count_studies(
    db: sqlite3.Connection, conditions: Sequence[Condition], text_search: bool
) -> int:
    """How many regular rows match every condition."""
    lookups = _lookups(conditions, text_search)
    sql, args = _select("count(*)", lookups[0] if lookups else None, conditions)
    return int(db.execute(sql, args).fetchone()[0])


def study_candidates(
    db: sqlite3.Connection, conditions: Sequence[Condition], text_search: bool
) -> Iterator[tuple[bytes, int, bytes]]:
    """The rows (JSON, id, extra JSON) of the regular studies matching every condition, in
    the study order, for a search the matcher finishes: looked up when an index
    finds fewer than :data:`PROBE` of them, else walked in order."""
    driver = None
    for lookup in _lookups(conditions, text_search):
        sql, args = _select("1", lookup, [lookup])
        found = db.execute(f"SELECT count(*) FROM ({sql} LIMIT {PROBE})", args).fetchone()[0]
        if found < PROBE:
            driver = lookup
            break
    sql, args = _select("row, id, extra", driver, conditions)
    yield from db.execute(f"{sql} {_ORDER}", args)


def rows_by_id(db: sqlite3.Connection, ids: list[int]) -> list[tuple[bytes, int, bytes]]:
    """The rows (JSON, id, extra JSON) of ``ids``, in their order."""
    rows: dict[int, tuple[bytes, bytes]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT id, row, extra FROM studies WHERE id IN ({marks})"
        rows.update((id_, (row, extra)) for id_, row, extra in db.execute(sql, chunk))
    return [(rows[id_][0], id_, rows[id_][1]) for id_ in ids]
