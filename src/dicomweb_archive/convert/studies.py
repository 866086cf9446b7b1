"""Refresh the derived documents of studies after their instances changed.

Everything here is recomputed from the instances' ``metadata.gz`` files on disk,
under the study's lock, so concurrent conversions and reruns after a kill all
converge on the same documents.  A study packed meanwhile is unpacked first.
The archive-level list is :func:`dicomweb_archive.store.studies.update_studies_index`.
"""

from __future__ import annotations

import gzip
import zlib

import orjson

from dicomweb_archive.model import paths
from dicomweb_archive.model.aggregate import Conflict, study_documents
from dicomweb_archive.store.base import dumps_json, gzip_bytes
from dicomweb_archive.store.directory import Archive
from dicomweb_archive.store.packing import ensure_unpacked
from dicomweb_archive.store.studies import study_lock, update_studies_index
from dicomweb_archive.types import JSONDataset

__all__ = ["update_studies_index", "update_study"]


def _load_instances(archive: Archive, study: str) -> dict[str, list[JSONDataset]]:
    by_series: dict[str, list[JSONDataset]] = {}
    for series in archive.list_dir(f"{paths.study_dir(study)}/series"):
        instances = []
        folder = f"{paths.series_dir(study, series)}/instances"
        for sop in archive.list_dir(folder):
            target = paths.instance_metadata(study, series, sop)
            try:
                document = archive.read_json_gz(target)
            except FileNotFoundError:
                continue  # not committed yet
            except (OSError, EOFError, zlib.error, gzip.BadGzipFile, orjson.JSONDecodeError):
                continue
            instances.extend(document)
        if instances:
            by_series[series] = instances
    return by_series


def update_study(archive: Archive, study: str) -> tuple[JSONDataset | None, list[Conflict]]:
    """Rewrite one study's derived documents; returns its QIDO row and conflicts."""
    with archive.lock(study_lock(study)):
        ensure_unpacked(archive, study)
        by_series = _load_instances(archive, study)
        if not by_series:
            archive.remove_all(
                [paths.study_metadata(study), paths.study_row(study), paths.series_index(study)]
            )
            return None, []
        docs = study_documents(study, by_series)
        series_metadata: dict[str, bytes] = {}
        for documents in docs.series:
            uid = documents.series_instance_uid
            series_metadata[uid] = gzip_bytes(dumps_json(documents.metadata))
            archive.write(paths.series_metadata(study, uid), series_metadata[uid])
            archive.write_json_gz(paths.instances_index(study, uid), documents.instance_rows)
        # Series folders without committed instances lose their documents.
        for series in archive.list_dir(f"{paths.study_dir(study)}/series"):
            if series not in by_series:
                archive.remove_all(
                    [paths.series_metadata(study, series), paths.instances_index(study, series)]
                )
        archive.write_json_gz(paths.series_index(study), docs.series_rows)
        # A study of one series has that series' metadata, byte for byte.
        study_metadata = (
            next(iter(series_metadata.values()))
            if len(series_metadata) == 1
            else gzip_bytes(dumps_json(docs.metadata))
        )
        archive.write(paths.study_metadata(study), study_metadata)
        archive.write_json_gz(
            paths.deduplicated(study),
            {
                **docs.deduplicated,
                "conflicts": [c.to_json() for c in docs.conflicts],
            },
        )
        archive.write_json_gz(paths.study_row(study), [docs.row])
        return docs.row, docs.conflicts
