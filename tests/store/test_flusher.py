"""The write-behind flusher: deferred studies caught up without a reader."""

from __future__ import annotations

import time
from pathlib import Path

from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.flusher import Flusher
from tests.conftest import write_instance


def test_a_deferred_study_is_flushed(tmp_path: Path) -> None:
    study = generate_uid()
    write_instance(tmp_path / "in", study=study, series=generate_uid())
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([str(tmp_path / "in")]).ok
    with open_archive(root) as archive:
        listed = archive.read(paths.STUDIES_INDEX)
        row = archive.read(paths.study_row(study))
        archive.store.remove(paths.STUDIES_INDEX)
        archive.store.remove(paths.study_row(study))
        catalog = Catalog(archive)
        catalog.defer([study])
        flusher = Flusher(catalog, delay=0.05).start()
        try:
            deadline = time.monotonic() + 10
            while catalog.journal.stale() or catalog.journal.unlisted():
                assert time.monotonic() < deadline
                time.sleep(0.02)
        finally:
            flusher.stop()
        assert archive.read(paths.study_row(study)) == row
        assert archive.read(paths.STUDIES_INDEX) == listed
