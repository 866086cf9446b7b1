"""The fast path against pydicom on damaged Explicit VR Little Endian files.

Seeded mutants (bit flips, truncations, corrupted length fields, inserted
bytes; some twice) of every reference file the fast path takes go through both
readings to DICOM JSON: each must end the same, with the same documents, bulk
data, undefined-length paths and Pixel Data position, or the same failure.  A
file the fast path takes that pydicom's reader refuses, or any difference, is
a reading the fast path must leave to pydicom.
"""

from __future__ import annotations

import io
import random
import warnings
from typing import Any

from dicomweb_archive.p10.bulkdata import BulkPolicy
from dicomweb_archive.p10.explicitjson import encode_parsed
from dicomweb_archive.p10.jsonmodel import encode_instance
from dicomweb_archive.p10.pixeldata import read_frames
from dicomweb_archive.p10.reader import read_instance
from tests.convert.test_fuzz import _mutant
from tests.p10.test_explicit import _bytes, _scan
from tests.reference import reference_files

SEED = 20261207
MUTANTS = 1200
#: Larger files cost more than they add: the mutations hit their pixels.
_LARGEST = 1 << 20
_POLICY = BulkPolicy(131074, 64)


def _sources() -> list[tuple[str, bytes]]:
    found = []
    for path in reference_files():
        data = _bytes(path)
        if len(data) <= _LARGEST and _scan(data) is not None:
            found.append((path.name, data))
    return found


def _outcome(data: bytes, *, fast: bool) -> tuple[Any, ...]:
    """How one reading ends: its JSON and what it refers to, or its failure."""
    try:
        parsed = read_instance(io.BytesIO(data), "mutant.dcm", fast=fast)
        encoded = encode_parsed(parsed, _POLICY) if fast else encode_instance(parsed, _POLICY)
        frames: list[bytes] = []
        if encoded.pixel_data is not None:
            _, found = read_frames(parsed, encoded.pixel_data, encoded.metadata)
            frames = list(found)
    except Exception as exc:
        return ("failed", type(exc).__name__, str(exc))
    return (
        "read",
        encoded.metadata,
        encoded.file_meta,
        encoded.undefined_length,
        [(bulk.path, bulk.vr, bulk.digest) for bulk in encoded.bulk_data],
        frames,
    )


def test_mutants_read_alike_or_are_left_to_pydicom() -> None:
    rng = random.Random(SEED)
    sources = _sources()
    assert len(sources) > 50  # every transfer syntax's files are there; most are taken
    taken = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's about the damage
        for number in range(MUTANTS):
            name, data = rng.choice(sources)
            mutant = _mutant(rng, data)
            if len(mutant) > 200 and rng.random() < 0.3:
                mutant = _mutant(rng, mutant)
            if _scan(mutant) is None:
                continue  # left to pydicom: one reading
            taken += 1
            fast, slow = _outcome(mutant, fast=True), _outcome(mutant, fast=False)
            assert fast == slow, f"mutant {number} of {name}"
    assert taken >= 100, "too few mutants taken by the fast path to test it"
