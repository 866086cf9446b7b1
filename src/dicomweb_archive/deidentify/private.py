"""Which private attributes stay: ``--strip-private``, ``--keep-private``, Retain Safe Private.

A private attribute ``(gggg,bbee)`` (odd ``gggg``) belongs to the block ``bb``
reserved by its Private Creator ``(gggg,00bb)``.  A block is kept when its
creator is named (``--keep-private``) or, with the Retain Safe Private option,
when the dataset itself declares it safe in its Private Data Element
Characteristics Sequence (0008,0300): Block Identifying Information Status
``SAFE``, or for ``MIXED`` the elements listed in Nonidentifying Private
Elements (0008,0304) (PS3.15 E.3.10, PS3.3 C.12.1.1.7).  Everything else
private goes, in nested items too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.dataset import Dataset

from dicomweb_archive.deidentify.elements import items_of

PRIVATE_DATA_ELEMENT_CHARACTERISTICS = 0x00080300
PRIVATE_GROUP_REFERENCE = 0x00080301
PRIVATE_CREATOR_REFERENCE = 0x00080302
BLOCK_IDENTIFYING_INFORMATION_STATUS = 0x00080303
NONIDENTIFYING_PRIVATE_ELEMENTS = 0x00080304


@dataclass(frozen=True)
class PrivatePolicy:
    """What to keep of the private attributes; the rest is removed."""

    #: Private Creator values whose blocks are kept whole.
    keep_creators: frozenset[str] = frozenset()
    #: Keep what the dataset declares safe in (0008,0300).
    keep_declared_safe: bool = False

    @classmethod
    def keeping(cls, creators: Iterable[str], *, declared_safe: bool = False) -> PrivatePolicy:
        return cls(frozenset(c.strip() for c in creators), declared_safe)

    def apply(self, ds: Dataset) -> None:
        """Remove the private attributes not kept from ``ds`` and every nested item."""
        safe = self._declared_safe(ds) if self.keep_declared_safe else {}
        creators: dict[tuple[int, int], str] = {}
        for tag in list(ds.keys()):
            group, element = tag >> 16, tag & 0xFFFF
            if group % 2 and 0x0010 <= element <= 0x00FF:
                creators[(group, element)] = _text(ds, tag)
        kept_blocks: set[tuple[int, int]] = set()
        for tag in list(ds.keys()):
            group, element = tag >> 16, tag & 0xFFFF
            if not group % 2:
                self._nested(ds, tag)
                continue
            if element >= 0x1000:
                owner = (group, element >> 8)
                creator = creators.get(owner)
                listed = safe.get((group, creator)) if creator is not None else None
                whole = creator is not None and creator in self.keep_creators
                if whole or (listed is not None and (listed == "*" or element & 0xFF in listed)):
                    kept_blocks.add(owner)
                    self._nested(ds, tag)
                    continue
            if not 0x0010 <= element <= 0x00FF:
                del ds[tag]
        for group, block in list(creators):
            if (group, block) not in kept_blocks:
                del ds[(group << 16) | block]

    def _nested(self, ds: Dataset, tag: int) -> None:
        for child in items_of(ds, tag):
            self.apply(child)

    def _declared_safe(self, ds: Dataset) -> dict[tuple[int, str], str | frozenset[int]]:
        """(group, creator) → ``"*"`` (a SAFE block) or the safe element offsets."""
        found: dict[tuple[int, str], str | frozenset[int]] = {}
        if PRIVATE_DATA_ELEMENT_CHARACTERISTICS not in ds:
            return found
        for item in ds[PRIVATE_DATA_ELEMENT_CHARACTERISTICS].value or []:
            group = item.get(PRIVATE_GROUP_REFERENCE)
            creator = item.get(PRIVATE_CREATOR_REFERENCE)
            status = item.get(BLOCK_IDENTIFYING_INFORMATION_STATUS)
            if group is None or creator is None or status is None:
                continue
            key = (int(group.value), str(creator.value).strip())
            if str(status.value).strip() == "SAFE":
                found[key] = "*"
            elif str(status.value).strip() == "MIXED" and NONIDENTIFYING_PRIVATE_ELEMENTS in item:
                offsets = item[NONIDENTIFYING_PRIVATE_ELEMENTS].value
                values = offsets if isinstance(offsets, list | tuple) else [offsets]
                found[key] = frozenset(int(v) & 0xFF for v in values)
        return found


def _text(ds: Dataset, tag: int) -> str:
    value = ds[tag].value
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value or "").strip(" \x00")
