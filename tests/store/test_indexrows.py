"""A refresh of a study writes the index rows that changed, and only those."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import INDEX_PATH, Level, QidoIndex, Query
from dicomweb_archive.store.indexrows import Record, instance_record, write_rows
from tests.conftest import write_instance


def _rowids(root: Path) -> dict[str, int]:
    with sqlite3.connect(root / INDEX_PATH) as db:
        return dict(db.execute("SELECT sop, rowid FROM instances"))


def _searches(index: QidoIndex, study: str) -> list[object]:
    everything = Query(study=study, include=None)
    return [
        index.search(Level.STUDY, Query(match=[("0020000D", "UI", study)], include=None)),
        index.search(Level.SERIES, everything),
        index.search(Level.INSTANCE, everything),
        # Study attributes match at the instance level (merged from the study's row).
        index.search(Level.INSTANCE, Query(match=[("00100020", "LO", "P7")])),
    ]


def test_a_new_instance_writes_its_row_and_leaves_the_others(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    for number in range(1, 6):
        write_instance(
            tmp_path / "in", study=study, series=series, instance_number=number, patient_id="P7"
        )
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([str(tmp_path / "in")]).ok
    archive = open_archive(root)
    catalog = Catalog(archive)
    catalog.open_index().close()
    catalog.settle([study])
    before = _rowids(root)
    write_instance(
        tmp_path / "more", study=study, series=series, instance_number=6, patient_id="P7"
    )
    assert Converter(root, ConvertOptions(workers=1)).convert([str(tmp_path / "more")]).ok
    catalog.settle([study])
    after = _rowids(root)
    assert len(after) == 6
    assert {sop: after[sop] for sop in before} == before
    with catalog.open_index() as index:
        refreshed = _searches(index, study)
        assert len(refreshed[2]) == 6 and len(refreshed[3]) == 6
        index.rebuild()
        assert _searches(index, study) == refreshed


def test_rows_whose_digest_is_unchanged_are_not_written(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "rows.sqlite")
    db.execute(
        "CREATE TABLE instances (sop, series, study, sort_key, row, attributes, digest,"
        " PRIMARY KEY (study, series, sop))"
    )

    def record(sop: str, number: int) -> tuple[tuple[str, ...], Record]:
        row = {
            "00080018": {"vr": "UI", "Value": [sop]},
            "00200013": {"vr": "IS", "Value": [number]},
        }
        return ("1.2.3", sop), instance_record(row, {})

    first = dict(record(f"1.2.3.{n}", n) for n in range(3))
    write_rows(db, "instances", "1.2", first)
    changes = db.total_changes
    write_rows(db, "instances", "1.2", first)
    assert db.total_changes == changes
    second = {**first, **dict([record("1.2.3.1", 7)])}
    del second["1.2.3", "1.2.3.0"]
    write_rows(db, "instances", "1.2", second)
    assert db.total_changes == changes + 2  # one deleted, one replaced
    rows = db.execute("SELECT sop, sort_key FROM instances ORDER BY sop").fetchall()
    assert rows == [("1.2.3.1", f"{7:020.6f}|1.2.3.1"), ("1.2.3.2", f"{2:020.6f}|1.2.3.2")]
