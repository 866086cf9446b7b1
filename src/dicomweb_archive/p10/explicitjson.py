"""DICOM JSON from the fast path's reading of an Explicit VR Little Endian file.

The same rules as :class:`~dicomweb_archive.p10.jsonmodel.JSONEncoder` applies
to pydicom's raw elements, on the elements :mod:`~dicomweb_archive.p10.explicit`
read: every value takes the same functions to JSON (``json_from_bytes``,
``binary_json``), in the same order, so both give the same documents, bulk data
and undefined-length paths (``tests/p10/test_explicit.py`` compares them on
every reference file).
"""

from __future__ import annotations

from typing import Any

from dicomweb_archive.errors import MalformedDicomError, TruncatedDicomError
from dicomweb_archive.model import paths
from dicomweb_archive.p10.bulkdata import INLINE, BulkPolicy
from dicomweb_archive.p10.encoded import (
    PIXEL_DATA,
    SPECIFIC_CHARACTER_SET,
    EncodedDataset,
    binary_json,
    charset_encodings,
    element_error,
    in_json,
)
from dicomweb_archive.p10.explicit import Element, ScannedFile, SequenceValue
from dicomweb_archive.p10.frames import StoredValue
from dicomweb_archive.p10.pixeldata import PixelDataElement
from dicomweb_archive.p10.reader import ParsedInstance
from dicomweb_archive.p10.values import BINARY_VRS, DEFAULT_ENCODINGS, json_from_bytes
from dicomweb_archive.types import JSONDataset

#: The DICOM JSON ``Value`` of values met before (None: no value), by VR, bytes
#: and character sets, with whether its values hold objects (person names):
#: most values of a series repeat from one instance to the next (patient,
#: study, equipment).
_SEEN: dict[tuple[str, bytes, str], tuple[list[Any] | None, bool]] = {}
#: Values kept at most (then all forgotten at once), and the longest value kept.
_SEEN_LIMIT = 1 << 14
_SEEN_SIZE = 256
#: Each tag's DICOM JSON key (``0020000D``), formatted once, or "" for a tag
#: left out of the JSON (:func:`in_json`), by where the tag is (``top``,
#: ``file_meta``); all forgotten at :data:`_SEEN_LIMIT` tags (private tags
#: are whatever the inputs hold).
_KEYS: dict[tuple[bool, bool], dict[int, str]] = {
    (top, file_meta): {} for top in (False, True) for file_meta in (False, True)
}


def _value_json(vr: str, value: bytes, encodings: list[str], charsets: str) -> JSONDataset:
    """``json_from_bytes`` of a text or number value, remembered when short.

    ``charsets`` names ``encodings`` in the memo's key; the dataset's loop
    copies what it finds there.
    """
    found = json_from_bytes(vr, value, "<", encodings)
    if len(value) <= _SEEN_SIZE:
        values = found.get("Value")
        if len(_SEEN) >= _SEEN_LIMIT:
            _SEEN.clear()
        objects = values is not None and any(isinstance(v, dict) for v in values)
        # A copy: whoever changes this instance's JSON must not change the next one's.
        _SEEN[vr, value, charsets] = (None if values is None else _copied(values, objects), objects)
    return found


def _copied(values: list[Any], objects: bool) -> list[Any]:
    return [dict(v) if isinstance(v, dict) else v for v in values] if objects else values.copy()


def _key(keys: dict[int, str], tag: int, *, top: bool, file_meta: bool) -> str:
    """The JSON key of ``tag`` in ``keys`` (``_KEYS[top, file_meta]``), noted there."""
    if len(keys) >= _SEEN_LIMIT:
        keys.clear()
    key = keys[tag] = f"{tag:08X}" if in_json(tag, top=top, file_meta=file_meta) else ""
    return key


def encode_parsed(parsed: ParsedInstance, policy: BulkPolicy) -> EncodedDataset:
    """A parsed instance as DICOM JSON: from the fast path's reading when it has one."""
    if parsed.scanned is None:
        from dicomweb_archive.p10.jsonmodel import encode_instance  # pydicom's reading

        return encode_instance(parsed, policy)
    scanned = parsed.scanned
    uri = paths.pixel_data_uri(parsed.series_instance_uid, parsed.sop_instance_uid)
    encoded = _ScannedEncoder(policy, scanned).encode(uri)
    try:
        encoded.file_meta = _ScannedEncoder(INLINE, scanned).dataset(
            scanned.file_meta, DEFAULT_ENCODINGS, "", top=False, file_meta=True
        )
    except MalformedDicomError as exc:
        raise MalformedDicomError(f"{parsed.name}: unreadable file meta: {exc}") from exc
    return encoded


class _ScannedEncoder:
    def __init__(self, policy: BulkPolicy, scanned: ScannedFile) -> None:
        self.policy = policy
        self.scanned = scanned
        self.encoded = EncodedDataset({})

    def encode(self, pixel_data_uri: str) -> EncodedDataset:
        self.encoded.metadata = self.dataset(self.scanned.elements, DEFAULT_ENCODINGS, "", top=True)
        pixel = self.scanned.pixel_data
        if pixel is not None:
            element = StoredValue(PIXEL_DATA, pixel.vr, pixel.length, pixel.offset)
            self.encoded.pixel_data = PixelDataElement(element, pixel.vr)
            self.encoded.metadata[f"{PIXEL_DATA:08X}"] = {
                "vr": pixel.vr,
                "BulkDataURI": pixel_data_uri,
            }
        return self.encoded

    def dataset(
        self,
        elements: list[Element],
        encodings: list[str],
        path: str,
        *,
        top: bool,
        file_meta: bool = False,
    ) -> JSONDataset:
        for element in elements:
            if element.tag >= SPECIFIC_CHARACTER_SET:  # elements come in ascending order
                if element.tag == SPECIFIC_CHARACTER_SET and isinstance(element.value, bytes):
                    encodings = charset_encodings(element.value)
                break
        charsets = encodings[0] if len(encodings) == 1 else "\\".join(encodings)
        out: JSONDataset = {}
        keys, seen = _KEYS[top, file_meta], _SEEN
        # The converter's hot loop: one look-up gives each element's key and
        # whether it is in the JSON, another a value met before.
        for tag, vr, value in elements:
            key = keys.get(tag)
            if key is None:
                key = _key(keys, tag, top=top, file_meta=file_meta)
            if not key:
                continue
            try:
                if type(value) is not bytes:
                    out[key] = self.sequence(value, encodings, path + key)  # type: ignore[arg-type]
                elif vr in BINARY_VRS:
                    out[key] = binary_json(self.encoded, self.policy, tag, vr, value, path + key)
                else:
                    known = seen.get((vr, value, charsets))
                    if known is None:
                        out[key] = _value_json(vr, value, encodings, charsets)
                    else:
                        values, objects = known
                        if values is None:
                            out[key] = {"vr": vr}
                        elif objects:
                            out[key] = {"vr": vr, "Value": _copied(values, objects)}
                        else:
                            out[key] = {"vr": vr, "Value": values.copy()}
            except (TruncatedDicomError, MalformedDicomError):
                raise
            except Exception as exc:  # as pydicom's path: a value that cannot be read
                raise element_error(key, exc) from exc
        return out

    def sequence(self, value: SequenceValue, encodings: list[str], path: str) -> JSONDataset:
        if value.undefined_length:
            self.encoded.undefined_length.append(path)
        if not value.items:
            return {"vr": "SQ"}
        items = []
        for index, item in enumerate(value.items):
            if item.undefined_length:
                self.encoded.undefined_length.append(f"{path}/{index}")
            items.append(self.dataset(item.elements, encodings, f"{path}/{index}/", top=False))
        return {"vr": "SQ", "Value": items}
