"""Which binary values become bulk data, and the values to store."""

from __future__ import annotations

import hashlib

from dicomweb_archive.model import paths
from dicomweb_archive.p10.bulkdata import INLINE, BulkPolicy, BulkValue


def test_thresholds_are_exclusive_and_private_tags_have_their_own() -> None:
    policy = BulkPolicy(public_bulk_size=100, private_bulk_size=10)
    assert not policy.is_bulk(0x00282000, 100)
    assert policy.is_bulk(0x00282000, 101)
    assert not policy.is_bulk(0x00091001, 10)  # odd group: private
    assert policy.is_bulk(0x00091001, 11)


def test_inline_keeps_everything_in_the_json() -> None:
    assert not INLINE.is_bulk(0x00091001, 1 << 20)
    assert not INLINE.is_bulk(0x7FE00010, 1 << 29)


def test_a_value_is_addressed_by_its_digest() -> None:
    value = BulkValue.of("00400275/0/00420011", "OB", b"document")
    digest = hashlib.sha256(b"document").hexdigest()
    assert value == BulkValue("00400275/0/00420011", "OB", b"document", digest)
    assert value.uri == paths.bulkdata_uri(digest)
    assert value.uri.startswith(f"bulkdata/{digest[:2]}/")
