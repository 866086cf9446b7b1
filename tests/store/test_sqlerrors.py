"""SQLite's failures to write raised as OSError."""

from __future__ import annotations

import errno
import sqlite3

import pytest

from dicomweb_archive.store.sqlerrors import os_errors


def _failing(code: int) -> None:
    exc = sqlite3.OperationalError("database or disk is full" if code == 13 else "disk I/O error")
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    raise exc


@pytest.mark.parametrize(
    ("code", "expected"),
    [(sqlite3.SQLITE_FULL, errno.ENOSPC), (4874, errno.ENOSPC), (10, errno.EIO)],
)
def test_a_full_disk_is_enospc_and_other_failures_eio(code: int, expected: int) -> None:
    with pytest.raises(OSError) as raised:
        os_errors(".dwa/x.sqlite")(_failing)(code)
    assert raised.value.errno == expected
    assert raised.value.filename == ".dwa/x.sqlite"
