"""A dataset's canonical JSON cut into its elements, each parsed once per
process; pure, no IO.

The archive writes each instance's metadata as canonical JSON (keys sorted at
any depth, no spaces), where each element stands as ``"key":{...}`` between
``{`` or ``},"`` and ``}`` or ``},"``.  Cut there, a document gives its
elements' *pieces* (``key":{...`` without the closing brace): equal elements,
equal pieces.  A sequence's items hold the same separator, so a sequence's
element spans several pieces; its first never parses alone, and is merged with
those after it until they do.

Each piece met is kept with its parsed element (:data:`_KNOWN`): instances of a
series hold most of their elements alike, which then cost a look-up, not a
parse, and share one object.  The pieces not met before are parsed, and
dumped back to check they are canonical.  A document whose pieces are all
known or checked, with keys sorted and each once, is the canonical JSON of
the dataset they make, byte for byte.  The next document is first compared
with the last one cut (:data:`_last`): where it holds the same pieces in the
same places, what the last one made is copied.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator
from typing import Any, NamedTuple, cast

import orjson

from dicomweb_archive.model import attributes as attrs
from dicomweb_archive.types import JSONDataset

#: Keys whose values are compared between instances (conflicts).
LEVEL_KEYS = attrs.STUDY_LEVEL | attrs.SERIES_LEVEL
#: Between two elements in a dataset's canonical JSON (and within sequences).
SEPARATOR = b'},"'
#: :data:`_KNOWN` is cleared once documents of this many bytes were cut since
#: (a few thousand instances: it holds a series' elements alike and each
#: instance's own: 5 MB after 3,000 CT slices, 14 MB of documents).
_KNOWN_LIMIT = 16 * 2**20
#: A merged piece is this many pieces at most: a longer sequence is read whole.
_MAX_MERGED = 64
_KEY = operator.itemgetter(0)
_JSON = operator.itemgetter(1)
_PIECE = operator.itemgetter(2)
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


class Cut(NamedTuple):
    """A dataset's elements in the order of their keys, and what an instance
    takes from them: the dataset, each key's piece, each compared key's value."""

    elements: list[Element]
    dataset: JSONDataset
    pieces: dict[str, bytes]
    values: dict[str, bytes]


class _Last(NamedTuple):
    """The last document cut: its pieces, for each the index of the element it
    is whole (-1: a sequence's part), and its cut."""

    pieces: list[bytes]
    whole: list[int]
    cut: Cut


#: Each element as first met, by its piece.
_KNOWN: dict[bytes, Element] = {}
#: How many pieces the element whose first piece this is took (a sequence's;
#: cleared with :data:`_KNOWN`).
_SPANS: dict[bytes, int] = {}
_cut_bytes = 0
_last: _Last | None = None


def cut(document: bytes) -> Cut | None:
    """The elements of a dataset's canonical JSON ``document``; None when
    ``document`` is not a dataset's canonical JSON (or does not cut so)."""
    global _last, _cut_bytes
    # What the table holds is bounded by the documents cut since it was
    # cleared (as many as a long-running server reads), not by the new
    # elements alone: each instance adds a few.
    _cut_bytes += len(document)
    if _cut_bytes > _KNOWN_LIMIT:
        _KNOWN.clear()
        _SPANS.clear()
        _cut_bytes = len(document)
    if document == b"{}":
        return Cut([], {}, {}, {})
    if not document.startswith(b'{"') or not document.endswith(b"}}"):
        return None
    pieces = document[2:-2].split(SEPARATOR)
    last = _last
    if last is not None and len(pieces) == len(last.pieces):
        made = _like_last(pieces, last)
        if made is not None:
            _last = _Last(pieces, last.whole, made)
            return made
    found: list[Element | None] = list(map(_KNOWN.get, pieces))
    if None in found:
        completed = _complete(pieces, found)
        if completed is None:
            return None
        elements, whole = completed
    else:
        elements, whole = cast(list[Element], found), list(range(len(pieces)))
    keys = list(map(_KEY, elements))
    # Sorted and each once: the document is the dataset's canonical JSON.
    if not all(map(operator.lt, keys, itertools.islice(keys, 1, None))):
        return None
    made = _cut_of(keys, elements)
    _last = _Last(pieces, whole, made)
    return made


def cut_one_by_one(ds: JSONDataset) -> Cut:
    """The elements of ``ds``, each dumped on its own (a dataset whose
    canonical JSON does not cut into its elements: long sequences); raises
    ValueError when one is not an object."""
    elements = list(_one_by_one(ds))
    return _cut_of(list(map(_KEY, elements)), elements)


def _cut_of(keys: list[str], elements: list[Element]) -> Cut:
    return Cut(
        elements,
        dict(zip(keys, map(_JSON, elements), strict=True)),
        dict(zip(keys, map(_PIECE, elements), strict=True)),
        dict(map(_VALUE, filter(_HAS_VALUE, elements))),
    )


def _like_last(pieces: list[bytes], last: _Last) -> Cut | None:
    """The cut of ``pieces`` copied from ``last``'s where they differ only in
    whole elements of the same keys (None: otherwise)."""
    same = list(map(operator.eq, pieces, last.pieces))
    changed: list[int] = []
    at = -1
    while True:
        try:
            at = same.index(False, at + 1)
        except ValueError:
            break
        if last.whole[at] < 0:
            return None
        changed.append(at)
    new = [pieces[at] for at in changed]
    found = list(map(_KNOWN.get, new))
    if None in found:
        if len(new) > 1:
            _learn_together(new)
        found = [_KNOWN.get(piece) or _learn(piece) for piece in new]
    made = Cut(
        last.cut.elements.copy(),
        last.cut.dataset.copy(),
        last.cut.pieces.copy(),
        last.cut.values.copy(),
    )
    for at, element in zip(changed, found, strict=True):
        index = last.whole[at]
        if element is None or element.key != made.elements[index].key:
            return None
        made.elements[index] = element
        made.dataset[element.key] = element.json
        made.pieces[element.key] = element.piece
        if element.value is None:
            made.values.pop(element.key, None)
        else:
            made.values[element.key] = element.value
    return made


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
    document = b'{"' + SEPARATOR.join(pieces) + b"}}"
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
    found = _KNOWN[piece] = Element(key, element, piece, valued, value)
    return found


def _complete(
    pieces: list[bytes], found: list[Element | None]
) -> tuple[list[Element], list[int]] | None:
    """The elements of ``pieces`` (``found``: those known), those not met yet
    parsed, and a sequence's pieces merged until they make its element (a
    known piece is a whole element; a sequence's first piece never parses
    alone, and is kept with how many pieces its element took last); and for
    each piece its element's index, or -1 for a sequence's."""
    _learn_new(pieces, found)
    elements: list[Element] = []
    whole: list[int] = []
    at = 0
    while True:
        try:
            miss = found.index(None, at)
        except ValueError:
            miss = len(pieces)
        whole.extend(range(len(elements), len(elements) + miss - at))
        elements.extend(cast(list[Element], found[at:miss]))
        if miss == len(pieces):
            return elements, whole
        element, at = _merged(pieces, miss)
        if element is None:
            return None
        whole.extend([len(elements)] if at == miss + 1 else [-1] * (at - miss))
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
        element = _KNOWN.get(SEPARATOR.join(pieces[at : at + span]))
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
            piece += SEPARATOR + pieces[last]
    return None, end


def _one_by_one(ds: JSONDataset) -> Iterator[Element]:
    for key in sorted(ds):
        if not isinstance(ds[key], dict):
            raise ValueError("a DICOM JSON element is not an object")
        piece = orjson.dumps({key: ds[key]}, option=orjson.OPT_SORT_KEYS)[2:-2]
        element = _KNOWN.get(piece) or _learn(piece)
        if element is None:  # pragma: no cover - a canonical piece parses
            raise ValueError(f"element {key} has no canonical JSON")
        yield element
