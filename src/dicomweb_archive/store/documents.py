"""Writing one study's derived documents from its instances.

Series and study metadata, each series' ``instances/index.json.gz`` and
``deduplicated.json.gz`` hold one entry per instance: they are written as
stitched gzip (:mod:`~dicomweb_archive.store.stitched`), each instance's JSON
made once per version of the instance (kept with it), so a refresh after one
new instance deflates a few chunks around it and copies the rest.  Their
uncompressed bytes are those of the whole document serialized at once
(sorted keys, no spaces).  The small documents (the study's and its series'
rows, the bulk data context) are written whole.
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Iterable, Iterator
from typing import Any

from dicomweb_archive.model import paths
from dicomweb_archive.model.aggregate import (
    DEDUPLICATED_FORMAT,
    SeriesDocuments,
    StudyDocuments,
    study_documents,
)
from dicomweb_archive.model.bulkcontext import document_of_uses
from dicomweb_archive.model.instance import Instance
from dicomweb_archive.model.runs import Run, runs
from dicomweb_archive.store.base import Store, dumps_json, folders
from dicomweb_archive.store.stitched import Piece, Stitcher, chunked, ends_chunk, joined, piece

#: A unit of a JSON list or object: whether it ends a chunk, and its fragments
#: (what precedes its entry, and the entry).
_Unit = tuple[bool, tuple[bytes, ...]]
_NO_KEYS = frozenset[str]()
_SOP = operator.attrgetter("sop")
#: A bulk data value's URI, tag path and VR.
Use = tuple[str, str, str]


def write_documents(
    store: Store,
    study: str,
    by_series: dict[str, list[Instance]],
    fields: tuple[str, ...],
    stitcher: Stitcher,
) -> StudyDocuments:
    """Write every derived document of ``study`` from its instances; returns them."""
    docs = study_documents(study, by_series, fields)
    series_metadata: dict[str, bytes] = {}
    for documents in docs.series:
        uid = documents.series_instance_uid
        name = paths.series_metadata(study, uid)
        series_metadata[uid] = stitcher.gzip(name, _list(_metadata_chunks(documents.runs)))
        store.write(name, series_metadata[uid])
        name = paths.instances_index(study, uid)
        rows = _row_chunks(documents.runs, documents.fields)
        store.write(name, stitcher.gzip(name, _list(rows)))
    # Series folders without committed instances lose their documents.
    for series in folders(store, f"{paths.study_dir(study)}/series"):
        if series not in by_series:
            store.remove(paths.series_metadata(study, series))
            store.remove(paths.instances_index(study, series))
    store.write_json_gz(paths.series_index(study), docs.series_rows)
    # A study of one series has that series' metadata, byte for byte.
    name = paths.study_metadata(study)
    if len(series_metadata) == 1:
        store.write(name, next(iter(series_metadata.values())))
    else:
        everything = [run for s in docs.series for run in s.runs]
        store.write(name, stitcher.gzip(name, _list(_metadata_chunks(everything))))
    name = paths.deduplicated(study)
    store.write(name, stitcher.gzip(name, _deduplicated(docs)))
    _write_bulkdata_context(store, study, docs.series)
    store.write_json_gz(paths.study_row(study), [docs.row])
    return docs


def _unit(mark: int, entry: bytes) -> _Unit:
    return ends_chunk(mark, len(entry) + 1), (b",", entry)


def _metadata_chunks(cut: list[Run]) -> list[tuple[bytes, ...]]:
    """The chunks of the instances' metadata, each run's kept with it
    (:mod:`~dicomweb_archive.model.runs`)."""
    return joined(run[0].of_run("metadata-piece", _NO_KEYS, run, _metadata_piece) for run in cut)


def _metadata_piece(run: Run, _: frozenset[str]) -> Piece:
    return piece(_metadata_units(run))


def _row_chunks(cut: list[Run], fields: frozenset[str]) -> list[tuple[bytes, ...]]:
    """The chunks of the instances' QIDO-RS rows, each run's kept with it."""
    return joined(run[0].of_run("rows-piece", fields, run, _row_piece) for run in cut)


def _row_piece(run: Run, fields: frozenset[str]) -> Piece:
    return piece(_row_units(run, fields))


def _metadata_units(instances: Iterable[Instance]) -> Iterator[_Unit]:
    for instance in instances:
        # Its canonical JSON, as read or made with it: not serialized again.
        yield _unit(instance.mark, instance.document)


def _row_units(instances: Iterable[Instance], fields: frozenset[str]) -> Iterator[_Unit]:
    for instance in instances:
        yield _unit(instance.mark, instance.row_json(fields))


def _list(chunks: list[tuple[bytes, ...]]) -> list[tuple[bytes, ...]]:
    """The chunks of a JSON list of the chunks' entries."""
    if not chunks:
        return [(b"[]",)]
    # The first entry follows the opening bracket, not a comma.
    chunks[0] = (b"[", *chunks[0][1:])
    chunks[-1] = (*chunks[-1], b"]")
    return chunks


def _deduplicated(docs: StudyDocuments) -> list[tuple[bytes, ...]]:
    """The chunks of ``deduplicated.json.gz``: its instances, one entry each
    in the order of their UIDs (sorted keys), between the rest."""
    document: dict[str, Any] = {
        "format": DEDUPLICATED_FORMAT,
        "version": 1,
        "studyInstanceUID": docs.study_instance_uid,
        "study": docs.shared,
        "series": docs.series_shared,
        "conflicts": [c.to_json() for c in docs.conflicts],
    }
    before = {key: value for key, value in document.items() if key < "instances"}
    after = {key: value for key, value in document.items() if key > "instances"}
    chunks = _entries(docs.series)
    head = dumps_json(before)[:-1] + b',"instances":{'
    tail = b"}," + dumps_json(after)[1:]
    if not chunks:
        return [(head, tail)]
    chunks[0] = (head, *chunks[0][1:])
    chunks[-1] = (*chunks[-1], tail)
    return chunks


def _entries(series: list[SeriesDocuments]) -> list[tuple[bytes, ...]]:
    """The chunks of the instances' entries in the order of their UIDs: each
    series' runs in that order kept with them when the series' UIDs do not
    interleave (UIDs made per series rarely do), else entry by entry."""
    ordered = sorted(
        ((s, sorted(s.listed, key=_SOP)) for s in series), key=lambda pair: pair[1][0].sop
    )
    if all(a[-1].sop < b[0].sop for (_, a), (_, b) in itertools.pairwise(ordered)):
        return joined(
            run[0].of_run("dedup-piece", (s.series_instance_uid, s.shared), run, _entries_piece)
            for s, listed in ordered
            for run in runs(listed)
        )
    entries = sorted(
        (
            (instance, s.series_instance_uid, s.shared)
            for s, listed in ordered
            for instance in listed
        ),
        key=lambda entry: entry[0].sop,
    )
    return chunked(_entry(*entry) for entry in entries)


def _entries_piece(run: Run, basis: tuple[str, frozenset[str]]) -> Piece:
    return piece(_entry(instance, *basis) for instance in run)


def _entry(instance: Instance, series: str, shared: frozenset[str]) -> _Unit:
    """An instance's entry: its series and its attributes but ``shared``."""
    own = instance.own_json(shared)
    made = functools.partial(_object_entry, instance.mark, instance.sop, series, own)
    return instance.derived("dedup-json", (own, series), made)


def _object_entry(mark: int, sop: str, series: str, own: bytes) -> _Unit:
    """``"sop":{"attributes":own,"series":series}`` as in an object serialized
    whole (its keys sorted)."""
    entry = b'%b:{"attributes":%b,"series":%b}' % (dumps_json(sop), own, dumps_json(series))
    return _unit(mark, entry)


def _write_bulkdata_context(store: Store, study: str, series: list[SeriesDocuments]) -> None:
    """``bulkdata.json.gz``: each bulk data value's instances and tag paths (none: removed)."""
    document = document_of_uses(
        study,
        (
            uses
            for s in series
            for run in s.runs
            for uses in run[0].of_run("bulkdata", s.series_instance_uid, run, _run_uses)
        ),
    )
    if document["bulkdata"]:
        store.write_json_gz(paths.bulkdata_context(study), document)
    else:
        store.remove(paths.bulkdata_context(study))


def _run_uses(run: Run, series: str) -> tuple[tuple[str, str, tuple[Use, ...]], ...]:
    """The bulk data uses of the run's instances that have any (kept with the run)."""
    return tuple((series, instance.sop, instance.bulkdata) for instance in run if instance.bulkdata)
