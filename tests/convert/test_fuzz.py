"""Seeded fuzzing of the converter: damaged inputs fail alone, clearly, and the archive stays valid.

Mutants of real files (bit flips, truncations, corrupted length fields, inserted
bytes) are converted in one run.  No exception may escape, no failure may be a
bug (``internal error``) or Python's own words, every failure is one line naming
its input, and every instance committed has metadata, info and frames that agree.
"""

from __future__ import annotations

import gzip
import random
import re
from pathlib import Path

import orjson
from pydicom.data import get_testdata_file
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, STANDARD_VR

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import paths

SEED = 20261206
MUTANTS = 600
SOURCES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "JPEG2000.dcm",
    "SC_rgb_rle.dcm",
    "rtplan.dcm",
    "image_dfl.dcm",
    "emri_small.dcm",
]
#: Python's words for its own failures: a reason must never be one of them.
PYTHON_TEXT = re.compile(
    r"unpack requires|Traceback|object has no attribute|not supported between|NoneType|"
    r"can only concatenate|index out of range|invalid literal for|unexpected keyword|"
    r"object is not|argument must be"
)
_VR_PAIRS = re.compile(b"(?=[A-Z]{2})")


def _length_fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of what look like explicit VR length fields."""
    fields = []
    for match in _VR_PAIRS.finditer(data, 132):
        at = match.start()
        vr = data[at : at + 2].decode("ascii")
        if vr in STANDARD_VR and at >= 4:
            fields.append((at + 4, 4) if vr in EXPLICIT_VR_LENGTH_32 else (at + 2, 2))
    return fields


def _mutant(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(out))
            out[at] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncation
        del out[rng.randrange(len(out)) :]
    elif kind == 2:  # a corrupted length field
        fields = _length_fields(data) or [(rng.randrange(132, len(out) - 4), 4)]
        at, size = rng.choice(fields)
        out[at : at + size] = rng.choice(
            [
                bytes(size),
                b"\xff" * size,
                rng.randbytes(size),
                (len(data) * 2).to_bytes(4, "little")[:size],
            ]
        )
    else:  # inserted bytes
        at = rng.randrange(len(out))
        out[at:at] = rng.randbytes(rng.randint(1, 16))
    return bytes(out)


def _json_gz(path: Path) -> object:
    return orjson.loads(gzip.decompress(path.read_bytes()))


def _check_instance(metadata_path: Path) -> None:
    folder = metadata_path.parent
    sop, series, study = folder.name, folder.parents[1].name, folder.parents[3].name
    [meta] = _json_gz(metadata_path)  # type: ignore[misc]
    assert meta["0020000D"]["Value"] == [study]
    assert meta["0020000E"]["Value"] == [series]
    assert meta["00080018"]["Value"] == [sop]
    info = _json_gz(folder.parents[5] / paths.instance_info(study, series, sop))
    assert isinstance(info, dict)
    frames_dir = folder / "frames"
    stored = sorted(int(p.name) for p in frames_dir.iterdir()) if frames_dir.is_dir() else []
    pixel = info.get("pixelData")
    if pixel is None or "7FE00010" not in meta:
        assert stored == [], folder
        return
    count = pixel["numberOfFrames"]
    assert stored == list(range(1, count + 1)), folder
    if pixel.get("encapsulated"):
        assert len(pixel["fragments"]) == count
    assert meta["7FE00010"]["BulkDataURI"] == paths.pixel_data_uri(series, sop)


def test_fuzzed_inputs_fail_alone_and_clearly(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    sources = [Path(get_testdata_file(name)).read_bytes() for name in SOURCES]
    folder = tmp_path / "in"
    folder.mkdir()
    names = set()
    for number in range(MUTANTS):
        index = rng.randrange(len(sources))
        path = folder / f"{number:04d}-{SOURCES[index]}"
        path.write_bytes(_mutant(rng, sources[index]))
        names.add(str(path))

    archive = tmp_path / "archive"
    result = Converter(archive, ConvertOptions(workers=1)).convert([str(folder)])

    assert sum(result.counts.values()) == MUTANTS
    for outcome in result.failures + result.skipped:
        reason = outcome.reason or ""
        assert outcome.name in names
        assert reason and "\n" not in reason and "\r" not in reason, outcome
        assert not reason.startswith("internal error"), outcome
        assert not PYTHON_TEXT.search(reason), outcome
    committed = sorted(archive.glob("studies/*/series/*/instances/*/metadata.gz"))
    assert committed, "no mutant converted: the mutations are too heavy to test anything"
    for metadata_path in committed:
        _check_instance(metadata_path)
