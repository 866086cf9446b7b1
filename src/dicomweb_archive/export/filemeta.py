"""The file meta group (0002) of an exported instance, as ``dcmwrite`` completes it."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from pydicom import __version_info__ as _pydicom_version
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from dicomweb_archive import tags
from dicomweb_archive.export.elements import VALUE_KEYS, DatasetEncoder
from dicomweb_archive.export.values import DEFAULT_ENCODING, unsupported
from dicomweb_archive.types import first_value

_IMPLEMENTATION_VERSION_NAME = f"PYDICOM {'.'.join(_pydicom_version)}"


def file_meta_group(
    stored: Mapping[str, Any] | None, document: Mapping[str, Any], ts: str, sop: str
) -> bytes:
    """Group 0002 as ``dcmwrite(enforce_file_format=True)`` writes it."""
    meta: dict[str, Any] = {
        key: element
        for key, element in (stored or {}).items()
        if key.upper() != tags.FileMetaInformationGroupLength
    }
    if any(not key.upper().startswith("0002") for key in meta):
        raise unsupported("file meta holds elements outside group 0002")
    meta = {key.upper(): element for key, element in meta.items()}
    meta[tags.TransferSyntaxUID] = {"vr": "UI", "Value": [ts]}
    sop_class = first_value(document, tags.SOPClassUID) if tags.SOPClassUID in document else None
    if tags.SOPClassUID not in document:
        sop_class = first_value(meta, tags.MediaStorageSOPClassUID)
    instance = first_value(document, tags.SOPInstanceUID)
    if instance and instance != sop:  # dcmwrite prefers the dataset's own UID
        sop = instance
    if not sop_class or not isinstance(sop_class, str) or not isinstance(sop, str):
        raise unsupported("no SOP Class UID for the file meta")
    meta[tags.MediaStorageSOPClassUID] = {"vr": "UI", "Value": [sop_class]}
    meta[tags.MediaStorageSOPInstanceUID] = {"vr": "UI", "Value": [sop]}
    version = meta.get(tags.FileMetaInformationVersion)
    if not isinstance(version, dict) or not any(version.get(k) for k in VALUE_KEYS):
        meta[tags.FileMetaInformationVersion] = {"vr": "OB", "InlineBinary": "AAE="}
    if not first_value(meta, tags.ImplementationClassUID):
        meta[tags.ImplementationClassUID] = {"vr": "UI", "Value": [str(PYDICOM_IMPLEMENTATION_UID)]}
    if tags.ImplementationVersionName not in meta:
        meta[tags.ImplementationVersionName] = {"vr": "SH", "Value": [_IMPLEMENTATION_VERSION_NAME]}

    def no_bulk(tag: str, vr: str, uri: str) -> bytes:
        raise unsupported("bulk data in the file meta")

    body = bytearray()
    DatasetEncoder(implicit=False, undefined=(), bulk=no_bulk, file_meta=True).dataset(
        meta, DEFAULT_ENCODING, "", body
    )
    return struct.pack("<HH2sHL", 0x0002, 0x0000, b"UL", 4, len(body)) + bytes(body)
