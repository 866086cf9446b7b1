"""The QIDO-RS index's tables: their schema, made (and remade when the schema
changed), and the trigram text index kept with them.

Each schema version has a file of its own (:data:`~dicomweb_archive.store.index.INDEX_PATH`);
:func:`make_tables` also meets the files of other versions left in the same folder.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from dicomweb_archive.store.columns import STUDY_COLUMNS
from dicomweb_archive.store.sqlerrors import remove_database

#: Bumped whenever the tables change.  Each schema has a file of its own, so
#: builds of different schemas never open each other's tables.
SCHEMA_VERSION = 4
#: The index files of other schemas (``index.sqlite``: those before 4).
_OTHER_FILES = ("index.sqlite", "index-*.sqlite")
#: The tables holding rows, each with a ``study`` column.
TABLES = ("studies", "series", "instances")
_COLUMNS = [column.name for column in STUDY_COLUMNS]
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY, study TEXT NOT NULL, sort_key TEXT NOT NULL, irregular INTEGER NOT NULL,
    {", ".join(f"{name} TEXT" for name in _COLUMNS)},
    extra BLOB NOT NULL, row BLOB NOT NULL, attributes BLOB NOT NULL
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
CREATE UNIQUE INDEX IF NOT EXISTS studies_study ON studies (study);
CREATE INDEX IF NOT EXISTS studies_order
    ON studies (irregular, sort_key, study, {", ".join(_COLUMNS)});
CREATE INDEX IF NOT EXISTS series_order ON series (study, sort_key, series);
CREATE INDEX IF NOT EXISTS instances_order ON instances (study, series, sort_key, sop);
""" + "".join(
    # In the study order after the value: the page of an equal value is read in order.
    f"CREATE INDEX IF NOT EXISTS {column.index} "
    f"ON studies ({column.name}, irregular, sort_key, study);\n"
    for column in STUDY_COLUMNS
    if not column.many
)
#: Substring search on the columns: an FTS5 table of their trigrams (SQLite
#: 3.34 or later), kept with the ``studies`` rows by triggers.
_NEW = ", ".join(f"new.{name}" for name in _COLUMNS)
_OLD = ", ".join(f"old.{name}" for name in _COLUMNS)
_TEXT_INSERT = f"INSERT INTO study_text (rowid, {', '.join(_COLUMNS)}) VALUES (new.id, {_NEW});"
_TEXT_DELETE = (
    f"INSERT INTO study_text (study_text, rowid, {', '.join(_COLUMNS)}) "
    f"VALUES ('delete', old.id, {_OLD});"
)
_TEXT_SCHEMA = (
    f"""CREATE VIRTUAL TABLE study_text USING fts5({", ".join(_COLUMNS)},
        content='studies', content_rowid='id', tokenize='trigram case_sensitive 1')""",
    f"CREATE TRIGGER study_text_insert AFTER INSERT ON studies BEGIN {_TEXT_INSERT} END",
    f"CREATE TRIGGER study_text_delete AFTER DELETE ON studies BEGIN {_TEXT_DELETE} END",
    f"CREATE TRIGGER study_text_update AFTER UPDATE ON studies BEGIN "
    f"{_TEXT_DELETE} {_TEXT_INSERT} END",
)
TEXT_DROP = (
    "DROP TRIGGER IF EXISTS study_text_insert",
    "DROP TRIGGER IF EXISTS study_text_delete",
    "DROP TRIGGER IF EXISTS study_text_update",
    "DROP TABLE IF EXISTS study_text",
)
logger = logging.getLogger(__name__)


def make_tables(db: sqlite3.Connection, path: Path, other_builds: bool) -> bool:
    """Make the tables, dropping those of another schema version; returns
    whether the index holds every study (a rebuild ran since it was made).

    One process at a time (an immediate transaction), so two servers
    opening an index of an older version drop it once.  With
    ``other_builds``, the index files of other schemas in the same folder
    mean a build of another schema used the archive since this index was
    last built, and may have written studies it lacks: it is rebuilt, and
    those files removed.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        others = _make(db, path, other_builds)
        complete = db.execute("SELECT value FROM meta WHERE key = 'complete'").fetchone()
    except BaseException:
        db.rollback()
        raise
    db.commit()
    for other in others:
        remove_database(other)
    return bool(complete[0] == "1")


def _make(db: sqlite3.Connection, path: Path, other_builds: bool) -> list[Path]:
    """:func:`make_tables` in its transaction; returns the other schemas' files."""
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if version is not None and version[0] != str(SCHEMA_VERSION):
        for statement in TEXT_DROP:
            db.execute(statement)
        for table in TABLES:
            db.execute(f"DROP TABLE IF EXISTS {table}")
        db.execute("DELETE FROM meta")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    if version is None or version[0] != str(SCHEMA_VERSION):
        create_text_index(db)
    db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
    db.execute("INSERT OR IGNORE INTO meta VALUES ('complete', '0')")
    others = _other_files(path) if other_builds else []
    if others:
        logger.warning(
            "%s: an index of another schema is there (%s): the index of schema %d "
            "is rebuilt, the other removed",
            path.parent,
            ", ".join(sorted(other.name for other in others)),
            SCHEMA_VERSION,
        )
        db.execute("UPDATE meta SET value = '0' WHERE key = 'complete'")
    return others


def _other_files(path: Path) -> list[Path]:
    found = {other for pattern in _OTHER_FILES for other in path.parent.glob(pattern)}
    return sorted(other for other in found if other.name != path.name)


def create_text_index(db: sqlite3.Connection) -> None:
    """The trigram text index and its triggers, when this SQLite has them."""
    try:
        for statement in _TEXT_SCHEMA:
            db.execute(statement)
    except sqlite3.OperationalError as exc:
        logger.warning("no substring index (SQLite %s): %s", sqlite3.sqlite_version, exc)
        for statement in TEXT_DROP:
            db.execute(statement)


def has_text_index(db: sqlite3.Connection) -> bool:
    found = db.execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'study_text_insert'"
    ).fetchone()
    return bool(found[0])
