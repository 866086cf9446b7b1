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
import operator
import zlib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar, cast

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


#: A dataset's canonical JSON (keys sorted at any depth, no spaces) holds each
#: element as ``"key":{...}`` between ``{`` or this and ``}`` or this; a
#: sequence's items hold it too, so an element may span several pieces.
_SEPARATOR = b'},"'
#: Each element as first met, by its piece of canonical JSON (``key":{...``, as
#: between separators): instances holding an element alike hold one object, its
#: piece one bytes object (most of a series' elements are alike), and an element
#: met before costs a look-up, not a parse.  Cleared once :data:`_KNOWN_LIMIT`
#: bytes of pieces were added since (what it holds, at most).
_KNOWN: dict[bytes, Element] = {}
_KNOWN_LIMIT = 16 * 2**20
#: How many pieces the element whose first piece this is took (a sequence's;
#: cleared with :data:`_KNOWN`).
_SPANS: dict[bytes, int] = {}
_known_bytes = 0
#: What a dataset dumped holds when an element holds a bulk data value's URI.
_BULKDATA = b'"' + BULKDATA_PREFIX.encode()
#: A merged piece is this many pieces at most: a longer sequence is read whole.
_MAX_MERGED = 64
_KEY = operator.itemgetter(0)
_JSON = operator.itemgetter(1)
_PIECE = operator.itemgetter(2)
_VALUED = operator.itemgetter(3)
_VALUE = operator.itemgetter(0, 4)
_HAS_VALUE = operator.itemgetter(4)


class Element(NamedTuple):
    """One element as met: its key, its parsed JSON, its piece of canonical
    JSON (equal elements, equal bytes), whether it holds a value, and the
    canonical JSON of that value when its key is compared between instances."""

    key: str
    json: Any
    piece: bytes
    valued: bool
    value: bytes | None


def _learn(piece: bytes) -> Element | None:
    """The element of ``piece`` (kept), or None when it is not one element in
    canonical JSON (a sequence's piece, or JSON written otherwise)."""
    document = b'{"' + piece + b"}}"
    try:
        parsed = orjson.loads(document)
    except orjson.JSONDecodeError:
        return None
    if len(parsed) != 1 or orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS) != document:
        return None
    [(key, element)] = parsed.items()
    return _keep(piece, key, element)


def _learn_together(pieces: list[bytes]) -> None:
    """Learn ``pieces`` in one parse when each is one element in canonical
    JSON, in the order of their keys (else leave them to :func:`_learn`)."""
    document = b'{"' + _SEPARATOR.join(pieces) + b"}}"
    try:
        parsed = orjson.loads(document)
    except orjson.JSONDecodeError:
        return
    # As many keys as pieces, dumped back alike: each piece is one element.
    if len(parsed) == len(pieces) and orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS) == document:
        for piece, (key, element) in zip(pieces, parsed.items(), strict=True):
            _keep(piece, key, element)


def _keep(piece: bytes, key: str, element: Any) -> Element:
    valued = bool(element.get("Value"))
    value = None
    if valued and key in LEVEL_KEYS:
        value = orjson.dumps({"Value": element["Value"]}, option=orjson.OPT_SORT_KEYS)
    global _known_bytes
    _known_bytes += len(piece)
    if _known_bytes > _KNOWN_LIMIT:
        _KNOWN.clear()
        _SPANS.clear()
        _known_bytes = len(piece)
    found = _KNOWN[piece] = Element(key, element, piece, valued, value)
    return found


def _elements(document: bytes) -> tuple[list[str], list[Element]] | None:
    """The keys and elements of a dataset's canonical JSON ``document``, in
    order; None when ``document`` is not a dataset's canonical JSON (or is not
    cut so)."""
    if document == b"{}":
        return [], []
    if not document.startswith(b'{"') or not document.endswith(b"}}"):
        return None
    pieces = document[2:-2].split(_SEPARATOR)
    found: list[Element | None] = list(map(_KNOWN.get, pieces))
    elements = _complete(pieces, found) if None in found else cast(list[Element], found)
    if elements is None:
        return None
    keys = list(map(_KEY, elements))
    # Sorted and each once: the document is the dataset's canonical JSON.
    if not all(map(operator.lt, keys, itertools.islice(keys, 1, None))):
        return None
    return keys, elements


def _complete(pieces: list[bytes], found: list[Element | None]) -> list[Element] | None:
    """The elements of ``pieces`` (``found``: those known), those not met yet
    parsed, and a sequence's pieces merged until they make its element (a
    known piece is a whole element; a sequence's first piece never parses
    alone, and is kept with how many pieces its element took last)."""
    _learn_new(pieces, found)
    elements: list[Element] = []
    at = 0
    while True:
        try:
            miss = found.index(None, at)
        except ValueError:
            elements.extend(cast(list[Element], found[at:]))
            return elements
        elements.extend(cast(list[Element], found[at:miss]))
        element, at = _merged(pieces, miss)
        if element is None:
            return None
        elements.append(element)


def _learn_new(pieces: list[bytes], found: list[Element | None]) -> None:
    """Learn the pieces not ``found`` that are not known to start a sequence
    (nor within one) together, and note them found."""
    new: list[int] = []
    after = 0  # the pieces of a sequence met before are left to _merged
    at = found.index(None)
    while True:
        span = _SPANS.get(pieces[at])
        if span is not None:
            after = at + span
        elif at >= after:
            new.append(at)
        try:
            at = found.index(None, at + 1)
        except ValueError:
            break
    if len(new) > 1:
        _learn_together([pieces[at] for at in new])
        for at in new:
            found[at] = _KNOWN.get(pieces[at])


def _merged(pieces: list[bytes], at: int) -> tuple[Element | None, int]:
    """The element starting at piece ``at`` and the piece after it."""
    first = pieces[at]
    span = _SPANS.get(first)
    if span is not None:
        element = _KNOWN.get(_SEPARATOR.join(pieces[at : at + span]))
        if element is not None:
            return element, at + span
    end = min(len(pieces), at + _MAX_MERGED)
    piece = first
    for last in range(at + 1, end + 1):
        element = _learn(piece)
        if element is not None:
            if last > at + 1:
                _SPANS[first] = last - at
            return element, last
        if last < end:
            piece += _SEPARATOR + pieces[last]
    return None, end


def _one_by_one(ds: JSONDataset) -> tuple[list[str], list[Element]]:
    """The keys and elements of ``ds``, each dumped on its own (a dataset whose
    canonical JSON does not cut into its elements: long sequences)."""
    keys, elements = sorted(ds), []
    for key in keys:
        if not isinstance(ds[key], dict):
            raise ValueError("a DICOM JSON element is not an object")
        piece = orjson.dumps({key: ds[key]}, option=orjson.OPT_SORT_KEYS)[2:-2]
        element = _KNOWN.get(piece) or _learn(piece)
        if element is None:  # pragma: no cover - a canonical piece parses
            raise ValueError(f"element {key} has no canonical JSON")
        elements.append(element)
    return keys, elements


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
        keys, elements = _elements(document) or _one_by_one(ds)
        if owned:
            ds.update(zip(keys, map(_JSON, elements), strict=True))
        return cls._made_of(ds, document, keys, elements)

    @classmethod
    def read(cls, document: bytes) -> list[Instance]:
        """The instances of a metadata document (a JSON list of datasets), as
        :meth:`of` makes them from the datasets it holds (a dataset in
        canonical JSON, as the archive writes them, is not parsed whole: only
        its elements not met before are)."""
        if document.startswith(b"[{") and document.endswith(b"}]"):
            dataset = document[1:-1]
            found = _elements(dataset)
            if found is not None:
                keys, elements = found
                ds = dict(zip(keys, map(_JSON, elements), strict=True))
                return [cls._made_of(ds, dataset, keys, elements)]
        return [cls.of(ds, owned=True) for ds in orjson.loads(document)]

    @classmethod
    def _made_of(
        cls, ds: JSONDataset, document: bytes, keys: list[str], elements: list[Element]
    ) -> Instance:
        sop = str(first_value(ds, tags.SOPInstanceUID))
        return cls(
            dataset=ds,
            sop=sop,
            sort_key=instance_sort_key(ds),
            elements=dict(zip(keys, map(_PIECE, elements), strict=True)),
            values=dict(map(_VALUE, filter(_HAS_VALUE, elements))),
            parts=elements,
            document=document,
            # A bulk data value's URI starts so: none there, none to look for.
            bulkdata=tuple(bulkdata_uses(ds)) if _BULKDATA in document else (),
            mark=zlib.crc32(sop.encode()),
        )

    @functools.cached_property
    def valued(self) -> frozenset[str]:
        """The keys whose elements hold a value (neither empty nor absent)."""
        return frozenset(map(_KEY, filter(_VALUED, self.parts)))

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
