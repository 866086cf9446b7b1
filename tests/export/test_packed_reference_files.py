"""Every convertible reference file: convert → pack → export from the ZIP → unpack.

Files go into a few archives (no two sharing an instance UID in one archive),
which are converted once.  Every study is packed (folder removed), every
instance exported from its study ZIP, and every study unpacked again: the
archive must be byte for byte what it was, each exported file must hold the
original's values and length encodings, and DCMTK's ``dcmdump`` must read it
without a single warning.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.export.p10 import export_instance
from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.packing import pack_study, unpack_study
from tests.export.test_p10 import FILES, _dataset, _read, undefined_lengths

DCMDUMP = shutil.which("dcmdump")


@dataclass(frozen=True)
class Uids:
    study: str
    series: str
    sop: str


def _uids(path: Path) -> Uids:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True)
    return Uids(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))


def _groups() -> list[list[tuple[Path, Uids]]]:
    """The files in as few groups as possible, each instance UID once per group."""
    groups: list[tuple[set[str], list[tuple[Path, Uids]]]] = []
    for path in FILES:
        uids = _uids(path)
        group = next((g for g in groups if uids.sop not in g[0]), None)
        if group is None:
            group = (set(), [])
            groups.append(group)
        group[0].add(uids.sop)
        group[1].append((path, uids))
    return [members for _, members in groups]


def converted_groups(base: Path) -> Iterator[tuple[Path, Archive, list[tuple[Path, Uids]]]]:
    """Each group of :func:`_groups` converted into an archive of its own under ``base``."""
    for number, group in enumerate(_groups()):
        root = base / f"archive-{number}"
        options = ConvertOptions(workers=2 if len(group) > 4 else 1)
        result = Converter(root, options).convert([str(p) for p, _ in group])
        assert result.ok, result.to_json()["failures"]
        yield root, open_archive(root), group


def _contents(root: Path) -> dict[str, bytes]:
    out = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".dwa"]
        for name in files:
            path = Path(folder, name)
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


@dataclass
class RoundTrip:
    #: Per group: whether pack → unpack gave back the same files.
    lossless: list[bool]
    #: Per reference file: the P10 bytes exported from its study ZIP.
    exported: dict[Path, Path]


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    base = tmp_path_factory.mktemp("packed")
    lossless, exported = [], {}
    for root, archive, group in converted_groups(base):
        before = _contents(root)
        for study in archive.study_uids():
            pack_study(archive, study, remove=True)
        assert not any((root / paths.study_dir(s)).exists() for s in archive.study_uids())
        for path, uids in group:
            data = export_instance(archive, uids.study, uids.series, uids.sop)
            target = base / "exported" / f"{path.parent.name}__{path.name}"
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(data)
            exported[path] = target
        for study in archive.study_uids():
            assert archive.is_packed(study)
            unpack_study(root / paths.study_zip(study), archive)
        lossless.append(_contents(root) == before)
    return RoundTrip(lossless, exported)


def test_pack_unpack_is_lossless(round_trip: RoundTrip) -> None:
    assert round_trip.lossless and all(round_trip.lossless)


IDS = [f"{p.parent.name}/{p.name}" for p in FILES]


@pytest.mark.parametrize("source", FILES, ids=IDS)
def test_exported_from_zip(source: Path, round_trip: RoundTrip) -> None:
    original = _read(source)
    exported = pydicom.dcmread(round_trip.exported[source])
    assert _dataset(exported) == _dataset(original)
    assert undefined_lengths(exported) == undefined_lengths(original)


def _dcmdump(*files: Path) -> tuple[int, str]:
    assert DCMDUMP is not None
    done = subprocess.run(
        [DCMDUMP, *map(str, files)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    return done.returncode, done.stderr


@pytest.fixture(scope="module")
def dcmtk_complaints(round_trip: RoundTrip) -> dict[Path, str]:
    """What dcmdump prints on stderr per exported file, for those it complains about.

    DCMTK prints every warning ("W:") and error ("E:") on stderr.  One run reads
    all files; only when it complains is each file read alone, to say which.
    """
    status, said = _dcmdump(*round_trip.exported.values())
    if (status, said) == (0, ""):
        return {}
    complaints = {}
    for source, exported in round_trip.exported.items():
        status, said = _dcmdump(exported)
        if (status, said) != (0, ""):
            complaints[source] = f"exit {status}: {said}"
    return complaints


@pytest.mark.skipif(DCMDUMP is None, reason="DCMTK's dcmdump is not installed (make test does)")
@pytest.mark.parametrize("source", FILES, ids=IDS)
def test_dcmtk_reads_the_export(source: Path, dcmtk_complaints: dict[Path, str]) -> None:
    assert dcmtk_complaints.get(source) is None
