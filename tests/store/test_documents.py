"""A study's documents: the JSON of each whole, stitched gzip, the same bytes
from a warm catalog as from a fresh one."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.model.aggregate import study_documents
from dicomweb_archive.model.instance import Instance
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.base import dumps_json
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.documents import write_documents
from dicomweb_archive.store.memory import MemoryStore
from dicomweb_archive.store.stitched import Stitcher
from dicomweb_archive.types import JSONDataset
from tests.conftest import snapshot, write_instance


def _convert(root: Path, folder: Path) -> None:
    assert Converter(root, ConvertOptions(workers=1)).convert([str(folder)]).ok


def test_documents_hold_the_whole_json_and_a_warm_refresh_writes_the_same_bytes(
    tmp_path: Path,
) -> None:
    study, series = str(generate_uid()), [str(generate_uid()), str(generate_uid())]
    for number in range(1, 25):
        write_instance(
            tmp_path / "in",
            study=study,
            series=series[number % 2],
            series_number=1 + number % 2,
            instance_number=number,
            patient_id="P1" if number != 3 else "P2",  # a conflict
        )
    root = tmp_path / "archive"
    _convert(root, tmp_path / "in")
    archive = open_archive(root)
    warm = Catalog(archive)
    warm.settle([study])
    # One more instance, its study refreshed by a fresh catalog (the converter's).
    write_instance(tmp_path / "more", study=study, series=series[0], instance_number=30)
    _convert(root, tmp_path / "more")
    fresh = snapshot(root)
    warm.journal.mark_stale(study)
    warm.settle([study])
    assert snapshot(root) == fresh
    by_series = {se: archive.read_json_gz(paths.series_metadata(study, se)) for se in series}
    docs = study_documents(study, by_series)
    expected = {
        paths.study_metadata(study): dumps_json(docs.metadata),
        paths.deduplicated(study): dumps_json(
            {**docs.deduplicated, "conflicts": [c.to_json() for c in docs.conflicts]}
        ),
        **{
            paths.instances_index(study, s.series_instance_uid): dumps_json(s.instance_rows)
            for s in docs.series
        },
    }
    assert docs.conflicts
    for name, data in expected.items():
        assert gzip.decompress(archive.store.read(name)) == data, name


def _dataset(study: str, series: str, sop: str, number: int, patient: str) -> JSONDataset:
    return {
        "00100020": {"vr": "LO", "Value": [patient]},
        "0020000D": {"vr": "UI", "Value": [study]},
        "0020000E": {"vr": "UI", "Value": [series]},
        "00080018": {"vr": "UI", "Value": [sop]},
        "00200013": {"vr": "IS", "Value": [number]},
    }


@pytest.mark.parametrize("interleaved", [False, True])
def test_documents_kept_by_run_are_the_whole_json_after_every_change(interleaved: bool) -> None:
    chance = random.Random(int(interleaved))
    study, series = "1.2.3", ["1.2.3.1", "1.2.3.2"]
    warm, store = Stitcher(), MemoryStore()

    def sop(n: int, se: int) -> str:
        return f"1.2.3.9.{n}.{se}" if interleaved else f"1.2.3.{se + 1}.{n}"

    by_series = {
        se: {sop(n, s): Instance.of(_dataset(study, se, sop(n, s), n, "P1")) for n in range(90)}
        for s, se in enumerate(series)
    }
    for round_ in range(8):
        listed = {se: [found[k] for k in sorted(found)] for se, found in by_series.items()}
        docs = write_documents(store, study, listed, (), warm)
        written = {name: store.read(name) for name in store.files}
        write_documents(fresh := MemoryStore(), study, listed, (), Stitcher())
        assert {name: fresh.read(name) for name in fresh.files} == written
        whole = dumps_json(
            {**docs.deduplicated, "conflicts": [c.to_json() for c in docs.conflicts]}
        )
        assert gzip.decompress(written[paths.deduplicated(study)]) == whole
        assert gzip.decompress(written[paths.study_metadata(study)]) == dumps_json(docs.metadata)
        s = chance.randrange(2)
        found = by_series[series[s]]
        if round_ % 3 == 2:
            del found[chance.choice(sorted(found))]
        else:  # a new instance, with a patient ID the others lack now and then
            n = 100 + round_
            patient = "P2" if round_ == 4 else "P1"
            found[sop(n, s)] = Instance.of(_dataset(study, series[s], sop(n, s), n, patient))
