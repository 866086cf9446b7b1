"""A study's documents: the JSON of each whole, stitched gzip, the same bytes
from a warm catalog as from a fresh one."""

from __future__ import annotations

import gzip
from pathlib import Path

from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.model.aggregate import study_documents
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.base import dumps_json
from dicomweb_archive.store.catalog import Catalog
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
