"""What a catalog last saw of each study it refreshed: its instances, by version.

A refresh that finds a study's changed instances named in the journal
(:class:`~dicomweb_archive.store.journal.Changes`) reads those again and takes
the rest from the study's :class:`StudyView`, with no look at each instance's
file.  It may only when nothing else changed the study unseen: the view is
trusted while the study's ``metadata.gz`` is the version this catalog wrote
last (a refresh elsewhere, another process or another catalog, rewrites it
when any instance changed).  Otherwise the study is scanned whole: every
instance's document is looked at by its version, and only those the view did
not see at that version are read (a process that starts afresh reads them all).

Memory is bounded: the least recently refreshed studies go once the kept views
stood for :data:`~dicomweb_archive.store.recall.LIMIT` bytes of stored
metadata documents (mostly the same instances as
:class:`~dicomweb_archive.store.recall.Recall` keeps), but the last one, which
stays alone if it is larger: a refresh holds a study whole anyway, and a
large study written instance by instance (a modality sending a CT of
thousands of slices) would otherwise be read whole at each of its refreshes.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from dicomweb_archive.model.instance import Instance
from dicomweb_archive.store.indexrows import Part
from dicomweb_archive.store.recall import LIMIT

#: One instance's metadata document as seen: its version, size and instances.
Seen = tuple[str, int, list[Instance]]


@dataclass
class StudyView:
    """A study's instances as one refresh saw them."""

    #: Each series' instances' documents, by SOP Instance UID, in the order
    #: first seen (a scan sees them in the order of their UIDs).
    series: dict[str, dict[str, Seen]] = field(default_factory=dict)
    #: The version of the study's ``metadata.gz`` written from them.
    written: str = ""
    #: Bytes of the documents seen.
    size: int = 0
    #: The instance records of each run last written into the index from it
    #: (None: not known to be there).
    rows: list[Part] | None = None
    #: Each series' instances, in the same order, kept up to date as seen.
    _lists: dict[str, list[Instance]] = field(default_factory=dict, repr=False)

    def see(self, series: str, sop: str, seen: Seen | None) -> None:
        """One instance's document seen again (None: gone)."""
        documents = self.series.get(series)
        if documents is None:
            if seen is None:
                return
            documents = self.series[sys.intern(series)] = {}
        before = documents.pop(sop, None) if seen is None else documents.get(sop)
        self.size += (seen[1] if seen else 0) - (before[1] if before else 0)
        if seen is not None:
            documents[sop] = seen
        if not documents:
            del self.series[series]
            self._lists.pop(series, None)
            return
        listed = self._lists.get(series)
        if listed is not None and not _replace(listed, before[2] if before else [], seen):
            del self._lists[series]  # listed again when asked

    def by_series(self) -> dict[str, list[Instance]]:
        """The instances of every series with any (not to be changed: kept)."""
        found: dict[str, list[Instance]] = {}
        for series, documents in self.series.items():
            instances = self._lists.get(series)
            if instances is None:
                instances = [i for _, _, kept in documents.values() for i in kept]
                self._lists[series] = instances
            found[series] = instances
        return found


def _replace(listed: list[Instance], before: list[Instance], seen: Seen | None) -> bool:
    """Put ``seen``'s instances in place of ``before`` in ``listed`` (a new
    document's at the end); False when that takes listing them all again."""
    after = seen[2] if seen is not None else []
    if not before:
        listed.extend(after)
    elif len(before) == 1 and len(after) == 1:
        listed[listed.index(before[0])] = after[0]
    elif len(before) == 1 and not after:
        listed.remove(before[0])
    else:
        return False
    return True


class Views:
    """The :class:`StudyView` of each study refreshed last, by study; see the module."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._kept: OrderedDict[str, tuple[int, StudyView]] = OrderedDict()
        self._size = 0
        self._guard = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def take(self, study: str) -> StudyView | None:
        """The study's view, no longer kept (:meth:`keep` it again once current)."""
        with self._guard:
            kept = self._kept.pop(study, None)
            if kept is None:
                return None
            self._size -= kept[0]
            return kept[1]

    def keep(self, study: str, view: StudyView) -> None:
        size = view.size
        with self._guard:
            self._kept[study] = (size, view)
            self._size += size
            # The study just refreshed stays, even alone past the limit: it is the
            # work in hand (its writer is likely to send more), whose next refresh
            # would otherwise read it whole again and hold as much meanwhile.
            while self._size > self.limit and len(self._kept) > 1:
                _, (dropped, _) = self._kept.popitem(last=False)
                self._size -= dropped
