"""DICOM JSON from the fast path's reading of an Explicit VR Little Endian file.

The same rules as :class:`~dicomweb_archive.p10.jsonmodel.JSONEncoder` applies
to pydicom's raw elements, on the elements :mod:`~dicomweb_archive.p10.explicit`
read: every value takes the same functions to JSON (``json_from_bytes``,
``binary_json``), in the same order, so both give the same documents, bulk data
and undefined-length paths (``tests/p10/test_explicit.py`` compares them on
every reference file).
"""

from __future__ import annotations

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

#: The DICOM JSON of values met before, by VR, bytes and character sets, with
#: whether its values hold objects (person names): most values of a series
#: repeat from one instance to the next (patient, study, equipment).
_SEEN: dict[tuple[str, bytes, str], tuple[JSONDataset, bool]] = {}
#: Values kept at most (then all forgotten at once), and the longest value kept.
_SEEN_LIMIT = 1 << 14
_SEEN_SIZE = 256
#: Each tag's DICOM JSON key (``0020000D``), formatted once (all forgotten at
#: :data:`_SEEN_LIMIT` tags: private tags are whatever the inputs hold).
_KEYS: dict[int, str] = {}


def _value_json(vr: str, value: bytes, encodings: list[str], charsets: str) -> JSONDataset:
    """``json_from_bytes`` of a text or number value, a copy of it when met before.

    ``charsets`` names ``encodings`` in the memo's key.
    """
    if len(value) > _SEEN_SIZE:
        return json_from_bytes(vr, value, "<", encodings)
    key = (vr, value, charsets)
    seen = _SEEN.get(key)
    if seen is None:
        found = json_from_bytes(vr, value, "<", encodings)
        values = found.get("Value")
        seen = found, values is not None and any(isinstance(v, dict) for v in values)
        if len(_SEEN) >= _SEEN_LIMIT:
            _SEEN.clear()
        _SEEN[key] = seen
    found, objects = seen
    # A copy: whoever changes one instance's JSON must not change the next one's.
    if "Value" not in found:
        return {"vr": vr}
    if not objects:
        return {"vr": vr, "Value": found["Value"].copy()}
    return {"vr": vr, "Value": [dict(v) if isinstance(v, dict) else v for v in found["Value"]]}


def _key(tag: int) -> str:
    key = _KEYS.get(tag)
    if key is None:
        if len(_KEYS) >= _SEEN_LIMIT:
            _KEYS.clear()
        key = _KEYS[tag] = f"{tag:08X}"
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
            if element.tag == SPECIFIC_CHARACTER_SET and isinstance(element.value, bytes):
                encodings = charset_encodings(element.value)
        charsets = encodings[0] if len(encodings) == 1 else "\\".join(encodings)
        out: JSONDataset = {}
        for tag, vr, value in elements:
            if not in_json(tag, top=top, file_meta=file_meta):
                continue
            key = _key(tag)
            try:
                if type(value) is not bytes:
                    out[key] = self.sequence(value, encodings, path + key)  # type: ignore[arg-type]
                elif vr in BINARY_VRS:
                    out[key] = binary_json(self.encoded, self.policy, tag, vr, value, path + key)
                else:
                    out[key] = _value_json(vr, value, encodings, charsets)
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
