"""SQLite's failures as the archive's errors; damage recognised, dropped, met once more."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from dicomweb_archive.errors import DamagedDatabaseError
from dicomweb_archive.store.sqlerrors import (
    damaged,
    database_errors,
    file_identity,
    opened_anew_when_damaged,
    recovered_when_damaged,
    remove_database,
)


def _failing(code: int, kind: type[sqlite3.DatabaseError] = sqlite3.OperationalError) -> None:
    exc = kind("database or disk is full" if code == 13 else "disk I/O error")
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    raise exc


class _User:
    """An object using a database, as the archive's are."""

    def __init__(self, failures: list[int]) -> None:
        self.failures = failures
        self.dropped = 0

    def drop(self) -> None:
        self.dropped += 1

    def use(self) -> str:
        if self.failures:
            _failing(self.failures.pop(0), sqlite3.DatabaseError)
        return "done"


@pytest.mark.parametrize(
    ("code", "expected"),
    [(sqlite3.SQLITE_FULL, errno.ENOSPC), (4874, errno.ENOSPC), (10, errno.EIO)],
)
def test_a_full_disk_is_enospc_and_other_failures_eio(code: int, expected: int) -> None:
    with pytest.raises(OSError) as raised:
        database_errors(".dwa/x.sqlite")(lambda self: _failing(code))(object())
    assert raised.value.errno == expected
    assert raised.value.filename == ".dwa/x.sqlite"


def test_what_sqlite_says_of_a_damaged_file_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    path.write_bytes(b"no database" * 200)
    with pytest.raises(sqlite3.DatabaseError) as raised:
        sqlite3.connect(path).execute("SELECT * FROM sqlite_master").fetchall()
    assert damaged(raised.value)
    corrupt = sqlite3.DatabaseError("database disk image is malformed")
    corrupt.sqlite_errorcode = 11 | (1 << 8)  # type: ignore[attr-defined]  # SQLITE_CORRUPT_VTAB
    assert damaged(corrupt)
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    assert not damaged(busy) and not damaged(OSError(errno.EIO, "x"))


def test_damage_is_dropped_then_one_line_naming_the_file() -> None:
    user = _User([sqlite3.SQLITE_NOTADB])
    use = database_errors(".dwa/x.sqlite", _User.drop)(_User.use)
    with pytest.raises(DamagedDatabaseError, match=r"^\.dwa/x\.sqlite: damaged \(disk I/O"):
        use(user)
    assert user.dropped == 1
    assert use(user) == "done"


def test_a_method_recovered_runs_once_more_and_damage_met_again_is_the_error() -> None:
    use = recovered_when_damaged(lambda user: f"{id(user)}.sqlite", _User.drop)(_User.use)
    once = _User([sqlite3.SQLITE_CORRUPT])
    assert use(once) == "done" and once.dropped == 1
    twice = _User([sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_CORRUPT])
    with pytest.raises(DamagedDatabaseError, match=f"^{id(twice)}.sqlite: damaged"):
        use(twice)
    assert twice.dropped == 2


def test_a_file_damaged_when_opened_is_removed_with_what_sqlite_keeps_beside_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "x.sqlite"
    path.write_bytes(b"no database" * 200)
    (tmp_path / "x.sqlite-journal").write_bytes(b"left")

    def open_database() -> int:
        db = sqlite3.connect(path)
        try:
            return int(db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
        finally:
            db.close()

    assert opened_anew_when_damaged(path, open_database, lambda: -1) == -1
    assert not (tmp_path / "x.sqlite-journal").exists()
    assert f"{path}: damaged" in caplog.text
    assert opened_anew_when_damaged(path, open_database) == 0  # no damage: opened once


def test_remove_database_and_file_identity(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    assert file_identity(path) is None
    sqlite3.connect(path).execute("CREATE TABLE t (a)").connection.close()
    stat = path.stat()
    assert file_identity(path) == (stat.st_dev, stat.st_ino)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"x.sqlite{suffix}").write_bytes(b"")
    (tmp_path / "other.sqlite").write_bytes(b"")
    remove_database(path)
    assert [p.name for p in tmp_path.iterdir()] == ["other.sqlite"]
