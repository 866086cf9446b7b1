"""One instance's metadata and what a study's documents take from it, kept
with it between refreshes; pure, no IO.

:class:`Instance` is made once per version of an instance's ``metadata.gz``
(:mod:`~dicomweb_archive.store.recall` keeps it): the canonical JSON of its elements,
the values compared between instances, its bulk data uses, and what refreshes
derive from it alone (signatures over a set of keys, its own attributes, its
JSON), each kept by what it was derived from.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from dicomweb_archive import tags
from dicomweb_archive.model import attributes as attrs
from dicomweb_archive.model.bulkcontext import BULKDATA_PREFIX, bulkdata_uses
from dicomweb_archive.types import JSONDataset, first_value

_T = TypeVar("_T")
_K = TypeVar("_K", bound=Hashable)
#: Keys whose values are compared between instances (conflicts).
LEVEL_KEYS = attrs.STUDY_LEVEL | attrs.SERIES_LEVEL


def sort_number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("inf")


def instance_sort_key(ds: JSONDataset) -> tuple[float, str]:
    return (
        sort_number(first_value(ds, tags.InstanceNumber)),
        str(first_value(ds, tags.SOPInstanceUID) or ""),
    )


#: Keys sorted, two spaces of indent per level: dumped so, each object in a
#: list starts at a line of its own with :data:`_ITEM` (what lies deeper is
#: indented more, and strings hold no raw newline).
_INDENTED = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2
_ITEM = b"\n  {"
#: Each object's canonical JSON as first met: instances holding an element
#: alike hold one object (most of a series' elements are alike); cleared once
#: :data:`_SEEN_LIMIT` bytes were serialized since (what it holds, at most).
_SEEN: dict[bytes, bytes] = {}
#: The parsed element first met for each canonical JSON of :data:`_SEEN`
#: (cleared with it): instances read alike hold one object per element alike.
_ELEMENTS: dict[bytes, Any] = {}
_SEEN_LIMIT = 16 * 2**20
_seen_bytes = 0
#: What a dataset dumped holds when an element holds a bulk data value's URI.
_BULKDATA = b'"' + BULKDATA_PREFIX.encode()


def _canonical(objects: Iterable[Mapping[str, Any]]) -> tuple[bytes, list[bytes]]:
    """``objects`` as canonical JSON, and each object's part of it (its keys
    sorted, at any depth: equal objects, equal bytes).

    One serialization cut where each object starts, rather than one per
    object: a refresh makes this for every element of every instance it
    reads.  An empty object follows the last, so that each ends alike (``},``).
    """
    listed = [*objects, {}]
    dumped = orjson.dumps(listed, option=_INDENTED)
    parts = dumped.split(_ITEM)
    if len(parts) != len(listed) + 1:
        raise ValueError("a DICOM JSON element is not an object")
    global _seen_bytes
    _seen_bytes += len(dumped)
    if _seen_bytes > _SEEN_LIMIT:
        _SEEN.clear()
        _ELEMENTS.clear()
        _seen_bytes = len(dumped)
    kept = parts[1:-1]
    return dumped, list(map(_SEEN.setdefault, kept, kept))


def _share_elements(ds: JSONDataset, parts: list[bytes]) -> None:
    for key, part in zip(list(ds), parts, strict=True):
        ds[key] = _ELEMENTS.setdefault(part, ds[key])


def _pick(ds: JSONDataset, keys: Iterable[str]) -> JSONDataset:
    return {k: ds[k] for k in keys if k in ds}


#: Key sets in use, one object each: what an instance keeps by key set is
#: found by identity, not by comparing the sets (cleared past this many).
_INTERNED: dict[frozenset[str], frozenset[str]] = {}
_INTERNED_LIMIT = 4096
#: What an instance keeps derived from itself: cleared past this many.
_MADE_LIMIT = 64


@functools.lru_cache(maxsize=_INTERNED_LIMIT)
def ordered(keys: frozenset[str]) -> tuple[str, ...]:
    """The key set ``keys`` sorted (the order of signatures over it), once per set."""
    return tuple(sorted(keys))


def interned(keys: frozenset[str]) -> frozenset[str]:
    """The one object standing for the key set ``keys``."""
    found = _INTERNED.get(keys)
    if found is None:
        if len(_INTERNED) >= _INTERNED_LIMIT:
            _INTERNED.clear()
        found = _INTERNED[keys] = keys
    return found


@dataclass(frozen=True, eq=False)
class Instance:
    """One instance's metadata and what the study's documents take from it.

    Computed once per version of the instance (:meth:`of`): a refresh of a
    study whose instances are known again costs comparisons of these bytes,
    not a new pass over every element of every instance.  What a refresh
    derives from one instance alone (its signatures over a set of keys, its
    own attributes, its QIDO-RS row) is kept with it too, by what it was
    derived for: a refresh of a study whose shared attributes did not change
    looks each of them up.
    """

    dataset: JSONDataset
    sop: str
    sort_key: tuple[float, str]
    #: Each element's canonical JSON (:func:`_canonical`): equal elements,
    #: equal bytes (and mostly the same object).
    elements: dict[str, bytes]
    #: The keys whose elements hold a value (neither empty nor absent).
    valued: frozenset[str]
    #: The canonical JSON of the values of the keys compared between
    #: instances, when valued (:func:`_canonical`).
    values: dict[str, bytes]
    #: The BulkDataURI, tag path and VR of every bulk data value it uses.
    bulkdata: tuple[tuple[str, str, str], ...] = ()
    #: A number standing for it, the same in every process (a CRC of its UID):
    #: where documents listing instances may be cut into chunks.
    mark: int = 0
    #: What was derived from it so far, by kind and the keys it was derived for.
    #: (Derived by kind alone when one at a time is kept: the kind is the key.)
    _made: dict[tuple[str, Hashable] | str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, ds: JSONDataset, *, owned: bool = False) -> Instance:
        """The instance of ``ds``; ``owned``: nothing else holds ``ds`` (parsed
        for it), whose elements alike an earlier instance's are then replaced
        by that one's objects (never changed: a series' instances share most)."""
        dumped, parts = _canonical(ds.values())
        if owned:
            _share_elements(ds, parts)
        valued = frozenset(key for key, element in ds.items() if element.get("Value"))
        compared = LEVEL_KEYS & valued
        _, values = _canonical({"Value": ds[key]["Value"]} for key in compared)
        sop = str(first_value(ds, tags.SOPInstanceUID))
        return cls(
            dataset=ds,
            sop=sop,
            sort_key=instance_sort_key(ds),
            elements=dict(zip(ds, parts, strict=True)),
            valued=valued,
            values=dict(zip(compared, values, strict=True)),
            # A bulk data value's URI starts so: none there, none to look for.
            bulkdata=tuple(bulkdata_uses(ds)) if _BULKDATA in dumped else (),
            mark=zlib.crc32(sop.encode()),
        )

    def row(self, fields: frozenset[str] = frozenset()) -> JSONDataset:
        """The instance's QIDO-RS row, with ``fields`` beyond the default attributes."""
        made: JSONDataset | None = self._made.get(("row", fields))
        if made is None:
            row = _pick(self.dataset, attrs.INSTANCE_QIDO | fields)
            row[tags.InstanceAvailability] = {"vr": "CS", "Value": ["ONLINE"]}
            row[tags.RetrieveURL] = {"vr": "UR", "Value": [f"instances/{self.sop}"]}
            made = self._keep(("row", fields), dict(sorted(row.items())))
        return made

    def elements_of(self, keys: frozenset[str]) -> tuple[bytes | None, ...]:
        """The canonical JSON of its elements of ``keys`` (None: absent), in the keys' order.

        Instances with equal tuples count alike wherever only ``keys`` matter.
        """
        made: tuple[bytes | None, ...] | None = self._made.get(("elements", keys))
        if made is None:
            made = self._keep(("elements", keys), tuple(map(self.elements.get, ordered(keys))))
        return made

    def values_of(self, keys: frozenset[str]) -> tuple[bytes, ...]:
        """The canonical JSON of its values of ``keys`` (empty: no value), in the keys' order."""
        made: tuple[bytes, ...] | None = self._made.get(("values", keys))
        if made is None:
            made = tuple(map(self.values.get, ordered(keys), itertools.repeat(b"")))
            self._keep(("values", keys), made)
        return made

    def own(self, shared: frozenset[str]) -> JSONDataset:
        """Its elements but those of ``shared``; the last one made is kept (the
        same for every refresh of its study that shares the same attributes)."""
        kept: tuple[frozenset[str], JSONDataset] | None = self._made.get("own")
        if kept is None or (kept[0] is not shared and kept[0] != shared):
            kept = (shared, {k: v for k, v in self.dataset.items() if k not in shared})
            self._keep("own", kept)
        return kept[1]

    def derived(self, kind: str, basis: tuple[object, object], make: Callable[[], _T]) -> _T:
        """What ``make`` derives from it and ``basis``: kept, made again only
        when the basis is other objects than last time."""
        kept: tuple[object, object, _T] | None = self._made.get(kind)
        if kept is None or kept[0] is not basis[0] or kept[1] is not basis[1]:
            kept = self._keep(kind, (*basis, make()))
        return kept[2]

    def of_run(
        self,
        kind: str,
        keys: _K,
        run: tuple[Instance, ...],
        make: Callable[[tuple[Instance, ...], _K], _T],
    ) -> _T:
        """What ``make`` finds in ``run`` (the instances from this one on) for
        ``keys`` (what else it depends on): kept with it, found again only when
        the run holds other instances (:mod:`~dicomweb_archive.model.runs`)."""
        kept: tuple[tuple[Instance, ...], _T] | None = self._made.get((kind, keys))
        if kept is None or kept[0] != run:
            kept = self._keep((kind, keys), (run, make(run, keys)))
        return kept[1]

    def _keep(self, key: tuple[str, Hashable] | str, made: _T) -> _T:
        if len(self._made) >= _MADE_LIMIT:
            self._made.clear()
        self._made[key] = made
        return made
