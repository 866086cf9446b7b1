"""Gzip documents stitched from chunks: one standard gzip file, the same bytes
whatever was kept, and only changed chunks deflated again."""

from __future__ import annotations

import gzip
import random
import subprocess
import zlib
from pathlib import Path

import orjson

from dicomweb_archive.store import stitched
from dicomweb_archive.store.stitched import Stitcher, chunked, crcs, gzip_member, stitch


def _unit(number: int, size: int = 1) -> tuple[bool, tuple[bytes, ...]]:
    """An instance-like entry: what is shared, and some values of its own."""
    uid = f"1.2.3.{number}"
    own = random.Random(number)
    entry = orjson.dumps(
        {
            "00080018": {"vr": "UI", "Value": [uid]},
            "00200032": {"vr": "DS", "Value": [own.uniform(-200, 200) for _ in range(3)]},
            "00280010": {"vr": "US", "Value": [512]},
            "x": ["shared words"] * 10 * size,
        }
    )
    return stitched.ends_chunk(zlib.crc32(uid.encode()), len(entry) + 1), (b",", entry)


def _chunks(units: list[tuple[bool, tuple[bytes, ...]]]) -> list[tuple[bytes, ...]]:
    return [(b"[",), *chunked(units), (b"]",)]


def test_edits_give_the_bytes_of_a_fresh_start(tmp_path: Path) -> None:
    chance = random.Random(7)
    units = [_unit(n, chance.randint(1, 30)) for n in range(600)]
    kept = Stitcher()
    for step in range(12):
        edit = step % 3
        if edit == 0:
            units.insert(chance.randrange(len(units) + 1), _unit(1000 + step))
        elif edit == 1:
            units.pop(chance.randrange(len(units)))
        else:
            k = chance.randrange(len(units))
            units[k] = (units[k][0], (b",", units[k][1][1] + b" "))
        chunks = _chunks(units)
        made = kept.gzip("doc", chunks)
        assert made == Stitcher().gzip("doc", chunks)
        assert gzip.decompress(made) == b"".join(f for chunk in chunks for f in chunk)
    (tmp_path / "doc.gz").write_bytes(made)
    subprocess.run(["gzip", "-t", str(tmp_path / "doc.gz")], check=True)
    # Close to the whole document's compression.
    assert len(made) < 1.3 * len(gzip.compress(gzip.decompress(made)))


def test_chunks_in_a_row_deflate_as_each_with_its_dictionary(monkeypatch: object) -> None:
    chance = random.Random(3)
    units = [_unit(n, chance.randint(1, 30)) for n in range(400)]
    chunks = _chunks(units)
    kept = Stitcher()
    kept.gzip("doc", chunks)
    units.insert(200, _unit(9000))
    streamed = [Stitcher().gzip("doc", _chunks(units)), kept.gzip("doc", _chunks(units))]
    assert stitched._streams_alike()
    # Each chunk with a compressor of its own, given the bytes before as dictionary.
    monkeypatch.setattr(stitched, "_streams_alike", lambda: False)  # type: ignore[attr-defined]
    assert streamed == [Stitcher().gzip("doc", _chunks(units))] * 2


def test_only_chunks_near_a_change_are_deflated_again(monkeypatch: object) -> None:
    units = [_unit(n, 3) for n in range(2000)]
    kept = Stitcher()
    kept.gzip("doc", _chunks(units))
    deflated: list[int] = []
    original = stitched._deflate

    def counting(fragments: tuple[bytes, ...], packer: zlib._Compress) -> stitched.Chunk:
        deflated.append(sum(len(f) for f in fragments))
        return original(fragments, packer)

    monkeypatch.setattr(stitched, "_deflate", counting)  # type: ignore[attr-defined]
    units.insert(1000, _unit(5000, 3))
    kept.gzip("doc", _chunks(units))
    # The changed chunk, and those within the window after it.
    assert sum(deflated) <= 2 * stitched.WINDOW + 4 * stitched.CHUNK
    assert len(deflated) < 10


def test_chunk_boundaries_follow_the_content() -> None:
    units = [_unit(n, 2) for n in range(500)]
    before = chunked(units)
    after = chunked([*units[:250], _unit(9999, 2), *units[250:]])
    # All but the chunk taking the new unit are the same.
    assert len(set(after) - set(before)) == 1
    assert sum(len(f) for chunk in before for f in chunk) / len(before) < 4 * stitched.CHUNK


def test_kept_chunks_are_bounded() -> None:
    kept = Stitcher(limit=50_000)
    for name in ("a", "b", "c"):
        kept.gzip(name, _chunks([_unit(n, 5) for n in range(100)]))
    assert kept._size <= 50_000


def test_crcs_kept_from_the_start_are_reused_and_equal_those_made_afresh() -> None:
    chance = random.Random(5)
    chunks = [(bytes(chance.randrange(256) for _ in range(50)),) for _ in range(20)]
    kept = stitch([], chunks)
    sums = crcs(kept)
    assert sums[-1] == zlib.crc32(b"".join(b"".join(c) for c in chunks))
    changed = [*chunks[:12], (b"new",), *chunks[12:]]
    done = stitch(kept, changed)
    assert done[:12] == kept[:12]
    assert crcs(done, kept, sums) == crcs(done)
    assert gzip.decompress(gzip_member(done)) == b"".join(b"".join(c) for c in changed)
