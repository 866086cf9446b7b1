"""Bulk data: which binary values leave the DICOM JSON, and the values to store."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from dicomweb_archive.model import paths


@dataclass(frozen=True)
class BulkPolicy:
    """Which binary values leave the JSON for a BulkDataURI (seed 002 thresholds)."""

    public_bulk_size: int = 131074
    private_bulk_size: int = 64

    def is_bulk(self, tag: int, length: int) -> bool:
        limit = self.private_bulk_size if (tag >> 16) & 1 else self.public_bulk_size
        return length > limit


#: A policy that keeps every value inline (the File Meta Information).
INLINE = BulkPolicy(1 << 30, 1 << 30)


@dataclass(frozen=True)
class BulkValue:
    """A binary value stored once per study under the SHA-256 of its bytes."""

    #: The element's tag path in the dataset (``"00420011"``, ``"00400275/0/00420011"``).
    path: str
    vr: str
    #: Little endian, as served.
    value: bytes
    digest: str

    @classmethod
    def of(cls, path: str, vr: str, value: bytes) -> BulkValue:
        return cls(path, vr, value, hashlib.sha256(value).hexdigest())

    @property
    def uri(self) -> str:
        """The BulkDataURI the JSON names it by, relative to its study."""
        return paths.bulkdata_uri(self.digest)
