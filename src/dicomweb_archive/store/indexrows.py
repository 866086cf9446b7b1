"""What one study puts in the QIDO-RS index, and writing only what changed.

A row of the index is stored with the attributes its level adds to its
parent's: a study with its row and the attributes all its instances share; a
series with its row and what its instances share beyond the study; an instance
with its row and its own attributes.  A search merges them down the levels, as
the study's documents do.  So a new instance of a study changes its own row,
its series' and the study's, not every other instance's.

Series and instance rows carry a digest of what they hold: a refresh of a study
writes the rows whose digest changed and deletes those whose series or instance
went.  The digests are read from the index itself, so a refresh by another
process in between (or a rebuild) is seen, never assumed.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections.abc import Mapping
from typing import Any, NamedTuple

from dicomweb_archive import tags
from dicomweb_archive.model.aggregate import StudyDocuments
from dicomweb_archive.store.base import dumps_json
from dicomweb_archive.types import JSONDataset, first_value

#: Each table's key within a study.
KEYS = {"series": ("series",), "instances": ("series", "sop")}


class Record(NamedTuple):
    """One series or instance row as stored."""

    sort_key: str
    row: bytes
    attributes: bytes
    #: Of the rest: equal digests, equal rows.
    digest: bytes


def number_key(value: Any) -> str:
    return f"{float(value):020.6f}" if isinstance(value, int | float) else "~"


def _record(number: Any, uid: str, row: JSONDataset, attributes: JSONDataset) -> Record:
    sort_key = f"{number_key(number)}|{uid}"
    row_blob, attributes_blob = dumps_json(row), dumps_json(attributes)
    digest = hashlib.blake2b(digest_size=16)
    for part in (sort_key.encode(), row_blob, attributes_blob):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return Record(sort_key, row_blob, attributes_blob, digest.digest())


def series_record(row: JSONDataset, shared: JSONDataset) -> Record:
    """A series row; ``shared``: what its instances share beyond the study."""
    uid = str(first_value(row, tags.SeriesInstanceUID))
    return _record(first_value(row, tags.SeriesNumber), uid, row, {**shared, **row})


def instance_record(row: JSONDataset, own: JSONDataset) -> Record:
    """An instance row; ``own``: its attributes its series does not share."""
    sop = str(first_value(row, tags.SOPInstanceUID))
    return _record(first_value(row, tags.InstanceNumber), sop, row, {**own, **row})


def study_records(
    docs: StudyDocuments,
) -> tuple[dict[tuple[str, ...], Record], dict[tuple[str, ...], Record]]:
    """The series and instance records of a study's documents, by key.

    An instance's record is kept with it while its row and own attributes are
    the same objects: a refresh that changed neither makes none anew.
    """
    dedup = docs.deduplicated
    series: dict[tuple[str, ...], Record] = {}
    instances: dict[tuple[str, ...], Record] = {}
    for one in docs.series:
        uid = one.series_instance_uid
        series[uid,] = series_record(one.row, dedup["series"].get(uid, {}))
        for instance in one.instances:
            row = instance.row(one.fields)
            own = dedup["instances"].get(instance.sop, {}).get("attributes", {})
            made = functools.partial(instance_record, row, own)
            instances[uid, instance.sop] = instance.derived("index", (row, own), made)
    return series, instances


def write_rows(
    db: sqlite3.Connection,
    table: str,
    study: str,
    records: Mapping[tuple[str, ...], Record],
    *,
    fresh: bool = False,
) -> None:
    """Make the study's rows of ``table`` (``series`` or ``instances``) those of
    ``records``, writing only rows whose digest differs; ``fresh``: it has none."""
    keys = KEYS[table]
    current: dict[tuple[str, ...], bytes] = {}
    if not fresh:
        select = f"SELECT {', '.join(keys)}, digest FROM {table} WHERE study = ?"
        found = db.execute(select, (study,))
        if table == "instances":
            current = {(series, sop): digest for series, sop, digest in found}
        else:
            current = {(series,): digest for series, digest in found}
    matches = " AND ".join(f"{key} = ?" for key in keys)
    db.executemany(
        f"DELETE FROM {table} WHERE study = ? AND {matches}",
        [(study, *key) for key in current.keys() - records.keys()],
    )
    columns = ("study", *keys, "sort_key", "row", "attributes", "digest")
    db.executemany(
        f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))})",
        [
            (study, *key, *record)
            for key, record in records.items()
            if current.get(key) != record.digest
        ],
    )
