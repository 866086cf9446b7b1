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
process in between (or a rebuild) is seen, never assumed; except by a
refresh whose catalog wrote the study's rows last and whose view of the study
is current (:mod:`~dicomweb_archive.store.views`): it writes the rows of the
runs of instances that changed since and deletes those of runs gone.  Whatever
else wrote the study's rows meanwhile derived them from the same documents (a
rebuild reads them inside its transaction, which this one waits for).  Studies the index
lacks (a rebuild) are written in batches, every table's rows at once
(:class:`FreshRows`).
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from dicomweb_archive import tags
from dicomweb_archive.model.aggregate import StudyDocuments, study_sort_key
from dicomweb_archive.model.instance import Instance
from dicomweb_archive.store.base import dumps_json
from dicomweb_archive.store.columns import STUDY_COLUMNS, study_cells
from dicomweb_archive.types import JSONDataset, first_value

#: Each table's key within a study.
KEYS = {"series": ("series",), "instances": ("series", "sop")}
#: The ``studies`` table's columns as a study's values fill them (its id aside).
_STUDY_COLUMNS = (
    "study",
    "sort_key",
    "irregular",
    *(column.name for column in STUDY_COLUMNS),
    "extra",
    "row",
    "attributes",
)
STUDY_INSERT = (
    f"INSERT INTO studies ({', '.join(_STUDY_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_STUDY_COLUMNS))})"
)
#: Study attributes viewers often ask for by ``includefield`` (OHIF's study list:
#: client-contract §2.1) that a study's row may lack: kept next to the row
#: (``extra``), so a page of such rows parses no study's whole attributes.
OFTEN_INCLUDED = frozenset(
    {tags.Modality, tags.StudyDescription, tags.ReferringPhysicianName, tags.PatientBirthDate}
)


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


def study_values(study: str, row: JSONDataset, shared: JSONDataset) -> tuple[Any, ...]:
    """A study's values of the ``studies`` table (:data:`STUDY_INSERT`): its row
    and what all its instances share (``shared``: its deduplicated document's "study")."""
    study_attributes = {**shared, **row}
    cells, irregular = study_cells(study, row, study_attributes)
    extra = {
        tag: study_attributes[tag]
        for tag in OFTEN_INCLUDED
        if tag in study_attributes and tag not in row
    }
    return (
        study,
        "|".join(study_sort_key(row)),
        int(irregular),
        *cells,
        dumps_json(extra),
        dumps_json(row),
        dumps_json(study_attributes),
    )


#: Records by key, of one run of instances (one dict per run: the same object
#: while the run and what its records derive from are the same).
Part = dict[tuple[str, ...], Record]
#: What a run's records derive from beyond its instances: its series, the
#: rows' extra fields, the keys its series shares.
_Basis = tuple[str, frozenset[str], frozenset[str]]


def study_records(docs: StudyDocuments) -> tuple[dict[tuple[str, ...], Record], list[Part]]:
    """The series records of a study's documents, and its instance records by
    run (:mod:`~dicomweb_archive.model.runs`).

    A run's records are kept with it while its instances, their rows' fields
    and the attributes their series shares are the same: a refresh after one
    new instance makes its run's records anew, not every instance's.
    """
    series: dict[tuple[str, ...], Record] = {}
    parts: list[Part] = []
    for one in docs.series:
        uid = one.series_instance_uid
        series[uid,] = series_record(one.row, docs.series_shared.get(uid, {}))
        basis = (uid, one.fields, one.shared)
        parts.extend(run[0].of_run("index", basis, run, _run_records) for run in one.runs)
    return series, parts


def _run_records(run: tuple[Instance, ...], basis: _Basis) -> Part:
    uid, fields, shared = basis
    records: Part = {}
    for instance in run:
        row = instance.row(fields)
        own = instance.own(shared)
        made = functools.partial(instance_record, row, own)
        records[uid, instance.sop] = instance.derived("index", (row, own), made)
    return records


def write_instance_rows(
    db: sqlite3.Connection, study: str, parts: list[Part], written: list[Part] | None
) -> None:
    """Make the study's instance rows those of ``parts``; ``written``: the parts
    last written for the study by this process, none written since by others
    (None: unknown, the rows' digests are read)."""
    if written is None:
        write_rows(db, "instances", study, {k: r for part in parts for k, r in part.items()})
        return
    kept = {id(part) for part in written}
    new = [part for part in parts if id(part) not in kept]
    current = {id(part) for part in parts}
    # Each instance is in one run: a key of a part gone is in no part kept.
    added = {key for part in new for key in part}
    gone = [key for part in written if id(part) not in current for key in part]
    db.executemany(
        "DELETE FROM instances WHERE study = ? AND series = ? AND sop = ?",
        [(study, *key) for key in gone if key not in added],
    )
    db.executemany(
        _INSERT["instances"].replace("INSERT", "INSERT OR REPLACE", 1),
        [(study, *key, *record) for part in new for key, record in part.items()],
    )


def write_rows(
    db: sqlite3.Connection,
    table: str,
    study: str,
    records: Mapping[tuple[str, ...], Record],
) -> None:
    """Make the study's rows of ``table`` (``series`` or ``instances``) those of
    ``records``, writing only rows whose digest differs."""
    keys = KEYS[table]
    select = f"SELECT {', '.join(keys)}, digest FROM {table} WHERE study = ?"
    found = db.execute(select, (study,))
    current: dict[tuple[str, ...], bytes]
    if table == "instances":
        current = {(series, sop): digest for series, sop, digest in found}
    else:
        current = {(series,): digest for series, digest in found}
    matches = " AND ".join(f"{key} = ?" for key in keys)
    db.executemany(
        f"DELETE FROM {table} WHERE study = ? AND {matches}",
        [(study, *key) for key in current.keys() - records.keys()],
    )
    db.executemany(
        _INSERT[table].replace("INSERT", "INSERT OR REPLACE", 1),
        [
            (study, *key, *record)
            for key, record in records.items()
            if current.get(key) != record.digest
        ],
    )


def _insert(table: str) -> str:
    columns = ("study", *KEYS[table], *Record._fields)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_INSERT = {table: _insert(table) for table in KEYS}


class FreshRows:
    """The rows of studies the index lacks, kept to be written together: one
    ``executemany`` per table for a whole batch (a rebuild)."""

    def __init__(self) -> None:
        self.studies: list[tuple[Any, ...]] = []
        self.series: list[tuple[Any, ...]] = []
        self.instances: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        """Rows kept, of every table."""
        return len(self.studies) + len(self.series) + len(self.instances)

    def add(
        self,
        study: str,
        row: JSONDataset,
        dedup: dict[str, Any],
        series: Iterable[tuple[JSONDataset, list[JSONDataset]]],
    ) -> None:
        """One study's rows from its documents: its row, its deduplicated
        document, and each series' row with its instances' rows."""
        self.studies.append(study_values(study, row, dedup["study"]))
        shared, own = dedup["series"], dedup["instances"]
        for series_row, instance_rows in series:
            uid = str(first_value(series_row, tags.SeriesInstanceUID))
            self.series.append((study, uid, *series_record(series_row, shared.get(uid, {}))))
            for instance_row in instance_rows:
                sop = str(first_value(instance_row, tags.SOPInstanceUID))
                attributes = own.get(sop, {}).get("attributes", {})
                self.instances.append((study, uid, sop, *instance_record(instance_row, attributes)))

    def write(self, db: sqlite3.Connection) -> None:
        """Insert the rows kept, then forget them."""
        db.executemany(STUDY_INSERT, self.studies)
        db.executemany(_INSERT["series"], self.series)
        db.executemany(_INSERT["instances"], self.instances)
        self.studies, self.series, self.instances = [], [], []
