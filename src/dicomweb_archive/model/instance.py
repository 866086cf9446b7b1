"""One instance's metadata and what a study's documents take from it, kept
with it between refreshes; pure, no IO.

:class:`Instance` is made once per version of an instance's ``metadata.gz``
(:mod:`~dicomweb_archive.store.recall` keeps it): the canonical JSON of its elements,
the values compared between instances, its bulk data uses, and what refreshes
derive from it alone (signatures over a set of keys, its own attributes, its
JSON), each kept by what it was derived from.

A document in canonical JSON (sorted keys, no spaces: what the archive
writes) is cut into its elements' pieces without being parsed; an element
met before (most of a series' are alike) is then a look-up, and only the
others are parsed (:meth:`Instance.read`).
"""

from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from dicomweb_archive import tags
from dicomweb_archive.model import attributes as attrs
from dicomweb_archive.model.bulkcontext import BULKDATA_PREFIX, bulkdata_uses
from dicomweb_archive.model.pieces import SEPARATOR, Cut, Element, cut, cut_one_by_one
from dicomweb_archive.types import JSONDataset, first_value

_T = TypeVar("_T")
_K = TypeVar("_K", bound=Hashable)


def sort_number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else float("inf")


def instance_sort_key(ds: JSONDataset) -> tuple[float, str]:
    return (
        sort_number(first_value(ds, tags.InstanceNumber)),
        str(first_value(ds, tags.SOPInstanceUID) or ""),
    )


#: What a dataset dumped holds when an element holds a bulk data value's URI.
_BULKDATA = b'"' + BULKDATA_PREFIX.encode()


@functools.lru_cache(maxsize=64)
def _row_keys(fields: frozenset[str]) -> frozenset[str]:
    """The keys an instance's row takes from it."""
    return attrs.INSTANCE_QIDO | fields


def _piece(key: str, vr: str, value: str) -> bytes:
    """The piece of canonical JSON of an element of one value."""
    return orjson.dumps({key: {"vr": vr, "Value": [value]}}, option=orjson.OPT_SORT_KEYS)[2:-2]


_AVAILABLE = _piece(tags.InstanceAvailability, "CS", "ONLINE")


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
    #: Each element's canonical JSON (:class:`Element`'s piece): equal
    #: elements, equal bytes (and mostly the same object).
    elements: dict[str, bytes]
    #: The canonical JSON of the values of the keys compared between
    #: instances, when valued.
    values: dict[str, bytes]
    #: Its elements as met (:class:`Element`), in the order of their keys.
    parts: list[Element] = field(default_factory=list, repr=False)
    #: The dataset's canonical JSON (sorted keys, no spaces): its entry in
    #: the series and study metadata.
    document: bytes = b"{}"
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
        document = orjson.dumps(ds, option=orjson.OPT_SORT_KEYS)
        made = cut(document) or cut_one_by_one(ds)
        if owned:
            ds.update(made.dataset)
        return cls._made_of(ds, document, made)

    @classmethod
    def read(cls, document: bytes) -> list[Instance]:
        """The instances of a metadata document (a JSON list of datasets), as
        :meth:`of` makes them from the datasets it holds (a dataset in
        canonical JSON, as the archive writes them, is not parsed whole: only
        its elements not met before are, :mod:`~dicomweb_archive.model.pieces`)."""
        if document.startswith(b"[{") and document.endswith(b"}]"):
            dataset = document[1:-1]
            made = cut(dataset)
            if made is not None:
                return [cls._made_of(made.dataset, dataset, made)]
        return [cls.of(ds, owned=True) for ds in orjson.loads(document)]

    @classmethod
    def _made_of(cls, ds: JSONDataset, document: bytes, made: Cut) -> Instance:
        sop = str(first_value(ds, tags.SOPInstanceUID))
        return cls(
            dataset=ds,
            sop=sop,
            sort_key=instance_sort_key(ds),
            elements=made.pieces,
            values=made.values,
            parts=made.elements,
            document=document,
            # A bulk data value's URI starts so: none there, none to look for.
            bulkdata=tuple(bulkdata_uses(ds)) if _BULKDATA in document else (),
            mark=zlib.crc32(sop.encode()),
        )

    @functools.cached_property
    def valued(self) -> frozenset[str]:
        """The keys whose elements hold a value (neither empty nor absent)."""
        return frozenset(element.key for element in self.parts if element.valued)

    def row(self, fields: frozenset[str] = frozenset()) -> JSONDataset:
        """The instance's QIDO-RS row, with ``fields`` beyond the default attributes."""
        made: JSONDataset | None = self._made.get(("row", fields))
        if made is None:
            row = _pick(self.dataset, _row_keys(fields))
            row[tags.InstanceAvailability] = {"vr": "CS", "Value": ["ONLINE"]}
            row[tags.RetrieveURL] = {"vr": "UR", "Value": [f"instances/{self.sop}"]}
            made = self._keep(("row", fields), dict(sorted(row.items())))
        return made

    def row_json(self, fields: frozenset[str] = frozenset()) -> bytes:
        """:meth:`row` as canonical JSON, made of its elements' pieces."""
        made: bytes | None = self._made.get(("row-json", fields))
        if made is None:
            picked = {k: self.elements[k] for k in _row_keys(fields) if k in self.elements}
            picked[tags.InstanceAvailability] = _AVAILABLE
            picked[tags.RetrieveURL] = _piece(tags.RetrieveURL, "UR", f"instances/{self.sop}")
            joined = SEPARATOR.join([picked[k] for k in sorted(picked)])
            made = self._keep(("row-json", fields), b'{"' + joined + b"}}")
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

    def own_json(self, shared: frozenset[str]) -> bytes:
        """:meth:`own` as canonical JSON, made of its elements' pieces; the last
        one made is kept."""
        kept: tuple[frozenset[str], bytes] | None = self._made.get("own-json")
        if kept is None or (kept[0] is not shared and kept[0] != shared):
            own = sorted(self.elements.keys() - shared)
            joined = SEPARATOR.join(map(self.elements.__getitem__, own))
            kept = (shared, b'{"' + joined + b"}}" if own else b"{}")
            self._keep("own-json", kept)
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
