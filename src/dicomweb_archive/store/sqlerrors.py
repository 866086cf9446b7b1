"""SQLite's failures as the archive's own errors; a damaged database recognised here alone.

A write SQLite fails raises the OSError every other write of the archive
raises (ENOSPC for a full disk).  A database SQLite finds damaged (not a
database at all, or pages that do not hold what they should: what a power
failure or lost blocks leave) is never repaired in place: every database of
the work folder is derived from the archive's files (the QIDO-RS index, the
study list's record) or stands for a relisting of them (the unlisted marks),
so the object using it drops the file and makes it anew, each with its own
recovery, and the operation that met the damage runs once more
(:func:`once_more_when_damaged`).  Only damage met again is an error, one
line naming the file (:class:`~dicomweb_archive.errors.DamagedDatabaseError`).
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from dicomweb_archive.errors import DamagedDatabaseError

_Method = TypeVar("_Method", bound=Callable[..., Any])
_T = TypeVar("_T")
#: A full disk, as SQLite says it: no room for a page, or for the write-ahead
#: log's shared memory.
_FULL = {sqlite3.SQLITE_FULL, getattr(sqlite3, "SQLITE_IOERR_SHMSIZE", 4874)}
#: Damage, as SQLite says it (primary result codes; extended ones add the cause).
_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
#: The files SQLite keeps beside a database: rollback journal, write-ahead log
#: and its shared memory.
_BESIDE = ("-journal", "-wal", "-shm")
logger = logging.getLogger(__name__)


def damaged(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite finding a file not (or no longer) a database."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and code is not None and code & 0xFF in _DAMAGED


def remove_database(path: Path) -> None:
    """Delete the database ``path`` and the files SQLite keeps beside it."""
    for name in (path.name, *(path.name + suffix for suffix in _BESIDE)):
        path.with_name(name).unlink(missing_ok=True)


def file_identity(path: Path) -> tuple[int, int] | None:
    """Which file ``path`` is (device, inode; None: none): a connection opened
    on a file another process dropped and made anew still reads the old one."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def opened_anew_when_damaged(
    path: Path, open_database: Callable[[], _T], open_anew: Callable[[], _T] | None = None
) -> _T:
    """``open_database()``; when it finds ``path`` damaged, the file is removed
    (logged) and a new one opened (by ``open_anew``, when the database has
    something to say about what it lost)."""
    try:
        return open_database()
    except sqlite3.DatabaseError as exc:
        if not damaged(exc):
            raise
        logger.warning("%s: damaged (%s): dropped, made anew", path, exc)
    remove_database(path)
    return (open_anew or open_database)()


def database_errors(
    where: str | Callable[[Any], object], drop: Callable[[Any], None] | None = None
) -> Callable[[_Method], _Method]:
    """Decorate a method of an object using the database ``where`` (a path to
    name in errors, or what gives it from the object): damage found calls
    ``drop(self)`` (which removes the file and makes it anew) and raises
    :class:`DamagedDatabaseError`; a full disk is OSError ENOSPC, another
    failure OSError EIO."""

    def decorate(method: _Method) -> _Method:
        @functools.wraps(method)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.DatabaseError as exc:
                if damaged(exc):
                    if drop is not None:
                        drop(self)
                    named = where if isinstance(where, str) else where(self)
                    raise DamagedDatabaseError(f"{named}: damaged ({exc})") from exc
                if not isinstance(exc, sqlite3.OperationalError):
                    raise
                full = getattr(exc, "sqlite_errorcode", None) in _FULL
                code = errno.ENOSPC if full else errno.EIO
                named = where if isinstance(where, str) else where(self)
                raise OSError(code, os.strerror(code) if full else str(exc), named) from exc

        return cast(_Method, run)

    return decorate


def once_more_when_damaged(action: Callable[[], _T]) -> _T:
    """``action()``, run once more when it found its database damaged (and it
    was dropped and made anew: :func:`database_errors`); damage met again is
    the caller's error."""
    try:
        return action()
    except DamagedDatabaseError as exc:
        logger.warning("%s: dropped, made anew", exc)
    return action()


def recovered_when_damaged(
    where: str | Callable[[Any], object], drop: Callable[[Any], None]
) -> Callable[[_Method], _Method]:
    """:func:`database_errors` for a method that can simply run again once
    ``drop`` made its database anew: it does, once."""

    def decorate(method: _Method) -> _Method:
        checked = database_errors(where, drop)(method)

        @functools.wraps(method)
        def run(*args: Any, **kwargs: Any) -> Any:
            return once_more_when_damaged(lambda: checked(*args, **kwargs))

        return cast(_Method, run)

    return decorate
