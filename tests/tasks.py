"""Tasks for the runners' tests (tests/test_pool.py, tests/test_cluster.py):
module-level, so that worker processes find them by name."""

from __future__ import annotations

import os

#: The item whose task kills its worker, every time.
CULPRIT = 5


def square(number: int) -> int:
    return number * number


def pid(_: int) -> int:
    return os.getpid()


def die_on_culprit(number: int) -> int:
    if number == CULPRIT:
        os._exit(1)  # the worker process dies, as under the out-of-memory killer
    return number


def never(item: int, reason: str) -> int:
    raise AssertionError(f"{item} lost: {reason}")
