"""The QIDO-RS index's tables: made, remade for another schema version, other files removed."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from dicomweb_archive.store.indextables import (
    SCHEMA_VERSION,
    TABLES,
    has_text_index,
    make_tables,
)


def _tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_new_tables_are_made_incomplete_and_kept_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / f"index-{SCHEMA_VERSION}.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert make_tables(db, path, other_builds=True) is False
        assert {"meta", *TABLES} <= _tables(db)
        assert has_text_index(db) == ("study_text" in _tables(db))
        db.execute("UPDATE meta SET value = '1' WHERE key = 'complete'")
        db.execute("INSERT INTO series VALUES ('1.2', '1', '', x'00', x'00', x'00')")
        db.commit()
        assert make_tables(db, path, other_builds=True) is True
        assert db.execute("SELECT count(*) FROM series").fetchone() == (1,)


def test_tables_of_another_schema_version_are_made_anew(tmp_path: Path) -> None:
    path = tmp_path / f"index-{SCHEMA_VERSION}.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('schema', '1'), ('complete', '1')")
        db.execute("CREATE TABLE studies (study TEXT PRIMARY KEY, sort_key, row, attributes)")
        db.commit()
        assert make_tables(db, path, other_builds=False) is False
        columns = {row[1] for row in db.execute("PRAGMA table_info(studies)")}
        assert {"id", "irregular", "patient_id"} <= columns
        schema = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        assert schema == (str(SCHEMA_VERSION),)


def test_files_of_other_schemas_beside_it_are_removed_and_the_index_is_incomplete(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / f"index-{SCHEMA_VERSION}.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        make_tables(db, path, other_builds=True)
        db.execute("UPDATE meta SET value = '1' WHERE key = 'complete'")
        db.commit()
        others = [tmp_path / "index.sqlite", tmp_path / "index.sqlite-wal"]
        for other in others:
            other.write_bytes(b"")
        assert make_tables(db, path, other_builds=False) is True
        assert all(other.exists() for other in others)
        assert make_tables(db, path, other_builds=True) is False
        assert not any(other.exists() for other in others)
    assert "an index of another schema is there (index.sqlite)" in caplog.text
