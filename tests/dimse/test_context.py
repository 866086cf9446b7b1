"""What DIMSE services work on: searches see deferred writes."""

from __future__ import annotations

from pathlib import Path

from pydicom.data import get_testdata_file

from dicomweb_archive.convert.instance import store_instance
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.dimse.associations import Associations
from dicomweb_archive.dimse.config import ListenConfig
from dicomweb_archive.dimse.context import ListenContext
from dicomweb_archive.dimse.receipt import Receipts
from dicomweb_archive.p10.reader import read_instance
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import Level, Query
from dicomweb_archive.store.manifest import open_or_create


def test_settle_brings_deferred_studies_into_the_index(tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    with open_archive(tmp_path / "archive") as archive:
        open_or_create(archive.store)
        catalog = Catalog(archive)
        index = catalog.open_index()
        config = ListenConfig()
        receipts = Receipts(tmp_path / "scratch")
        context = ListenContext(
            archive, ConvertOptions(), catalog, index, config, Associations(config), receipts
        )
        with open(get_testdata_file("CT_small.dcm"), "rb") as fp:
            stored = store_instance(archive, ConvertOptions(), read_instance(fp, "ct"))
        catalog.defer([str(stored.study_instance_uid)])
        assert index.search(Level.STUDY, Query()) == []
        context.settle()
        [row] = index.search(Level.STUDY, Query())
        assert row["0020000D"]["Value"] == [stored.study_instance_uid]
        assert not catalog.journal.stale()
        index.close()
        receipts.close()
