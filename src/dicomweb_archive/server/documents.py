"""Metadata documents as served, kept: made once per stored file version and service URL.

A stored metadata document is gzipped JSON with study-relative BulkDataURIs;
the answer is the same document with absolute ones, gzipped again for most
clients (see :mod:`.metadata`).  Inflating, rewriting and deflating a series
of a few hundred instances costs milliseconds, on every request of a viewer
opening it.  The answers are kept here, keyed by everything they depend on:
the stored bytes (file, version, place in the file), the study's URL and the
content coding.  Another version of the file is another key, so a STOW-RS
that rewrites the document is never answered from the old one; the least
recently used answers go once :data:`BUDGET` bytes are held.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final, NamedTuple

#: Bytes of answers kept at most (per server process).
BUDGET: Final = 64 * 1024 * 1024


class DocumentKey(NamedTuple):
    """What one answer depends on."""

    #: The stored document's path in the archive, its file's version, its offset there.
    relative: str
    version: str
    offset: int
    #: The study's absolute URL, written into the BulkDataURIs.
    study_url: str
    #: ``gzip`` or empty.
    coding: str


class Documents:
    """Answers by :class:`DocumentKey`, least recently used dropped beyond ``budget`` bytes.

    Safe to share between the event loop and worker threads.
    """

    def __init__(self, budget: int = BUDGET) -> None:
        self.budget = budget
        self.held = 0
        self._answers: OrderedDict[DocumentKey, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: DocumentKey) -> bytes | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def put(self, key: DocumentKey, answer: bytes) -> None:
        if len(answer) > self.budget:
            return
        with self._lock:
            previous = self._answers.pop(key, None)
            if previous is not None:
                self.held -= len(previous)
            self._answers[key] = answer
            self.held += len(answer)
            while self.held > self.budget:
                _, dropped = self._answers.popitem(last=False)
                self.held -= len(dropped)

    def __len__(self) -> int:
        return len(self._answers)
