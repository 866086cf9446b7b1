"""SQLite's failures to write raised as the OSError every other write of the archive raises."""

from __future__ import annotations

import errno
import functools
import os
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar, cast

_Method = TypeVar("_Method", bound=Callable[..., Any])
#: A full disk, as SQLite says it: no room for a page, or for the write-ahead
#: log's shared memory.
_FULL = {sqlite3.SQLITE_FULL, getattr(sqlite3, "SQLITE_IOERR_SHMSIZE", 4874)}


def os_errors(where: str) -> Callable[[_Method], _Method]:
    """Decorate a method using the database ``where`` (a path to name in the
    error): its SQLite errors raised as OSError (ENOSPC for a full disk)."""

    def decorate(method: _Method) -> _Method:
        @functools.wraps(method)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                full = getattr(exc, "sqlite_errorcode", None) in _FULL
                code = errno.ENOSPC if full else errno.EIO
                raise OSError(code, os.strerror(code) if full else str(exc), where) from exc

        return cast(_Method, run)

    return decorate
