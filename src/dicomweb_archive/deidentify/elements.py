"""Element VRs and sequence items of a parsed dataset, converting only what must be.

The converter keeps most elements raw (bytes as read); de-identification reads
an element's value only when an action needs it, and knows a sequence by its
VR, from the file or the data dictionary.
"""

from __future__ import annotations

from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence


def vr_of(ds: Dataset, tag: int) -> str:
    """The VR of element ``tag`` of ``ds`` (``UN`` when nothing says better)."""
    item = ds.get_item(tag, keep_deferred=True)
    vr = getattr(item, "VR", None)
    if vr and vr != "UN" and " or " not in vr:
        return str(vr)
    if not (tag >> 16) % 2:
        try:
            known = dictionary_VR(tag)
        except KeyError:
            return str(vr or "UN")
        return known.split(" or ")[0] if known else str(vr or "UN")
    try:  # a private element: pydicom's private dictionary, by its creator
        return str(ds[tag].VR or "UN").split(" or ")[0]
    except Exception:  # an undecodable value
        return "UN"


def items_of(ds: Dataset, tag: int) -> list[Dataset]:
    """The items of sequence ``tag`` (none when it is empty or not a sequence)."""
    if vr_of(ds, tag) != "SQ":
        return []
    value = ds[tag].value
    return list(value) if isinstance(value, Sequence) else []
