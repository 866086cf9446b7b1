"""The shared vocabulary: DICOM JSON datasets, instance keys, byte ranges.

Every layer speaks these; this module imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

#: A dataset in the DICOM JSON Model (PS3.18 Annex F): tag keys to elements.
JSONDataset = dict[str, Any]


def first_value(ds: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """The first value of element ``key`` of ``ds``, or ``default`` when it has none."""
    element = ds.get(key)
    if not isinstance(element, dict):
        return default
    value = element.get("Value")
    return value[0] if isinstance(value, list) and value else default


class InstanceKey(NamedTuple):
    """The three UIDs that place an instance in an archive (``*key`` spreads them)."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str

    def __str__(self) -> str:
        return f"{self.study_instance_uid}/{self.series_instance_uid}/{self.sop_instance_uid}"


class ByteRange(NamedTuple):
    """The half-open byte range ``[start, end)`` of a resource."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start
