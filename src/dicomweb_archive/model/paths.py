"""Where each DICOMweb resource lives in an archive: its WADO-RS / QIDO-RS path.

Every path is relative to the archive root, which is the DICOMweb service root:
``studies/{study}/series/{series}/instances/{instance}/frames/{n}`` is both the
file and the URL.  JSON documents are stored gzipped; the file name adds ``.gz``
(and ``index.json`` where a path is also a folder).
"""

from __future__ import annotations

from typing import Final

MANIFEST: Final = "manifest.json"
#: Private working area (locks, temporary files); never served.
WORK_DIR: Final = ".dwa"

STUDIES_INDEX: Final = "studies/index.json.gz"
METADATA: Final = "metadata.gz"
INFO: Final = "info.json.gz"
INDEX: Final = "index.json.gz"
DEDUPLICATED: Final = "deduplicated.json.gz"
#: Folder of an instance's HTJ2K alternate frames, beside ``frames``.
HTJ2K: Final = "htj2k"


def study_dir(study: str) -> str:
    return f"studies/{study}"


def study_zip(study: str) -> str:
    """A packed study: one ZIP whose entries are the study's paths below.

    A study is either a folder ``studies/{study}/`` or this file; when both
    exist (a pack or an unpack under way), the ZIP is the study.
    """
    return f"studies/{study}.zip"


def series_dir(study: str, series: str) -> str:
    return f"studies/{study}/series/{series}"


def instance_dir(study: str, series: str, instance: str) -> str:
    return f"studies/{study}/series/{series}/instances/{instance}"


def frame_path(study: str, series: str, instance: str, number: int) -> str:
    return f"{instance_dir(study, series, instance)}/frames/{number}"


def htj2k_dir(study: str, series: str, instance: str) -> str:
    """The instance's HTJ2K alternate frames (the ``framesPath`` ``/htj2k/``)."""
    return f"{instance_dir(study, series, instance)}/{HTJ2K}"


def htj2k_frame_path(study: str, series: str, instance: str, number: int) -> str:
    """Frame ``number`` of the HTJ2K alternate, stored like ``frames/{n}``."""
    return f"{htj2k_dir(study, series, instance)}/{number}"


def bulkdata_uri(digest: str) -> str:
    """The BulkDataURI of a content-addressed value, relative to its study.

    ``bulkdata/…`` resolves against the study URL in OHIF whatever its
    ``relativeResolution`` setting (client-contract §7).
    """
    return f"bulkdata/{digest[:2]}/{digest[2:]}"


def bulkdata_path(study: str, digest: str) -> str:
    return f"{study_dir(study)}/{bulkdata_uri(digest)}"


def pixel_data_uri(series: str, instance: str) -> str:
    """The BulkDataURI of an instance's Pixel Data: its frames resource."""
    return f"series/{series}/instances/{instance}/frames"


def study_metadata(study: str) -> str:
    return f"{study_dir(study)}/{METADATA}"


def series_metadata(study: str, series: str) -> str:
    return f"{series_dir(study, series)}/{METADATA}"


def instance_metadata(study: str, series: str, instance: str) -> str:
    return f"{instance_dir(study, series, instance)}/{METADATA}"


def instance_info(study: str, series: str, instance: str) -> str:
    return f"{instance_dir(study, series, instance)}/{INFO}"


def study_row(study: str) -> str:
    """QIDO row of one study (``/studies?StudyInstanceUID=…``)."""
    return f"{study_dir(study)}/{INDEX}"


def series_index(study: str) -> str:
    """QIDO ``/studies/{study}/series``."""
    return f"{study_dir(study)}/series/{INDEX}"


def instances_index(study: str, series: str) -> str:
    """QIDO ``/studies/{study}/series/{series}/instances``."""
    return f"{series_dir(study, series)}/instances/{INDEX}"


def deduplicated(study: str) -> str:
    return f"{study_dir(study)}/{DEDUPLICATED}"
