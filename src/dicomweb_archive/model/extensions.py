"""Extension folders: third-party results stored beside a study, series or instance.

An extension folder is ``_{vendor}_{name}/`` directly in a study, series or
instance folder (``…/instances/{sop}/_aistartupco_covid19_detection/result.json``);
it holds flat files.  Both names are checked against strict patterns before any
path is built from them, so no name can leave its folder: only lowercase
letters, digits, ``_`` and ``-`` in a folder name, a file name starting with a
letter or digit, no ``/``, ``\\``, ``%``, ``..`` or control characters anywhere.
The content type of a file comes from its name's extension; anything unknown
is ``application/octet-stream``.  Pure rules, no IO.
"""

from __future__ import annotations

import re
from typing import Final

from dicomweb_archive.errors import InvalidInputError

#: ``_{vendor}_{name}``: vendor letters and digits, name letters, digits, ``_`` and ``-``.
FOLDER_PATTERN: Final = r"_[a-z0-9]{1,32}_[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?"
#: A file name: one segment, a letter or digit first and last, dots only between others.
FILE_PATTERN: Final = r"[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?=[A-Za-z0-9_-])){0,127}"
_FOLDER: Final = re.compile(FOLDER_PATTERN)
_FILE: Final = re.compile(FILE_PATTERN)
#: The study document listing every extension folder of the study, by its URL name.
INDEX_FORMAT: Final = "dicomweb-archive/extensions"

OCTET_STREAM: Final = "application/octet-stream"
#: Content types by file name ending, longest ending first.  Formats that a
#: browser would run (HTML, SVG, JavaScript) are deliberately absent: third-party
#: content served from the viewer's origin must not script it.
CONTENT_TYPES: Final = (
    (".nii.gz", "application/gzip"),
    (".json", "application/json"),
    (".png", "image/png"),
    (".jpg", "image/jpeg"),
    (".jpeg", "image/jpeg"),
    (".pdf", "application/pdf"),
    (".txt", "text/plain; charset=utf-8"),
    (".csv", "text/csv; charset=utf-8"),
    (".xml", "application/xml"),
    (".dcm", "application/dicom"),
    (".nii", OCTET_STREAM),
    (".nrrd", OCTET_STREAM),
    (".gz", "application/gzip"),
    (".zip", "application/zip"),
)


def is_folder_name(name: str) -> bool:
    """Whether ``name`` is an extension folder's name, ``_{vendor}_{name}``."""
    return _FOLDER.fullmatch(name) is not None


def check_folder_name(name: str) -> str:
    if not is_folder_name(name):
        raise InvalidInputError(
            f"{name!r} is not an extension folder name: _{{vendor}}_{{name}} in lowercase "
            "letters, digits, _ and - (e.g. _aistartupco_covid19_detection)"
        )
    return name


def check_file_name(name: str) -> str:
    if _FILE.fullmatch(name) is None:
        raise InvalidInputError(
            f"{name!r} is not an extension file name: letters, digits, _, - and single dots "
            "between them, at most 128 characters, no folders"
        )
    return name


def content_type(name: str) -> str:
    """The content type of an extension file, from its name's ending."""
    lowered = name.lower()
    for ending, media_type in CONTENT_TYPES:
        if lowered.endswith(ending):
            return media_type
    return OCTET_STREAM


def vendor(folder: str) -> str:
    """The vendor part of a checked folder name (``_{vendor}_{name}``)."""
    return folder[1:].partition("_")[0]
