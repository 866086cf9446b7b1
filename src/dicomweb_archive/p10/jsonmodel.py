"""DICOM JSON Model (PS3.18 Annex F) straight from a parsed P10 dataset.

pydicom parses the file into raw elements; this module turns their encoded bytes
into DICOM JSON without building pydicom's value objects, which is what makes the
converter fast.  Elements whose VR needs context (implicit VR, ``UN`` standing for
a known VR, ambiguous VRs such as ``US or SS``) and sequences go through pydicom's
own conversion first; every value then takes the same path to JSON.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filewriter import correct_ambiguous_vr_element
from pydicom.hooks import raw_element_vr
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

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
    encodings_of,
    in_json,
)
from dicomweb_archive.p10.pixeldata import (
    PixelDataElement,
)
from dicomweb_archive.p10.reader import ParsedInstance, read_deferred
from dicomweb_archive.p10.values import (
    BINARY_VRS,
    DEFAULT_ENCODINGS,
    WORD_WIDTH,
    json_from_bytes,
    json_from_element,
    swap_bytes,
)
from dicomweb_archive.types import JSONDataset


def encode_instance(parsed: ParsedInstance, policy: BulkPolicy) -> EncodedDataset:
    """A parsed instance as DICOM JSON; its Pixel Data names its frames resource."""
    encoder = JSONEncoder(
        parsed.fp,
        is_little_endian=parsed.is_little_endian,
        policy=policy,
        file_size=parsed.size,
    )
    encoded = encoder.encode(
        parsed.dataset,
        pixel_data_uri=paths.pixel_data_uri(parsed.series_instance_uid, parsed.sop_instance_uid),
    )
    if parsed.file_meta is not None:
        meta_encoder = JSONEncoder(parsed.fp, is_little_endian=True, policy=INLINE)
        try:
            encoded.file_meta = meta_encoder.encode_file_meta(parsed.file_meta)
        except MalformedDicomError as exc:
            raise MalformedDicomError(f"{parsed.name}: unreadable file meta: {exc}") from exc
    return encoded


class JSONEncoder:
    """Encodes one parsed dataset, reading deferred values from ``fp``."""

    def __init__(
        self,
        fp: BinaryIO,
        *,
        is_little_endian: bool,
        policy: BulkPolicy,
        file_size: int | None = None,
    ) -> None:
        self._fp = fp
        self._le = is_little_endian
        self._endian = "<" if is_little_endian else ">"
        self._policy = policy
        self._file_size = file_size
        self._pixel_data_uri: str | None = None
        self._encoded = EncodedDataset({})

    # -- datasets ---------------------------------------------------------------

    def encode(self, ds: Dataset, *, pixel_data_uri: str | None = None) -> EncodedDataset:
        """A top-level dataset (group 0002 is never included) as DICOM JSON.

        Its Pixel Data's BulkDataURI is ``pixel_data_uri``; without one it has none.
        """
        self._pixel_data_uri = pixel_data_uri
        self._encoded = EncodedDataset({})
        self._encoded.metadata = self._dataset(ds, DEFAULT_ENCODINGS, "", top=True)
        return self._encoded

    def encode_file_meta(self, file_meta: Dataset) -> JSONDataset:
        """The JSON of a File Meta Information group (always little endian)."""
        return self._dataset(file_meta, DEFAULT_ENCODINGS, "", top=False, file_meta=True)

    def _dataset(
        self,
        ds: Dataset,
        parent_encodings: list[str],
        path: str,
        *,
        top: bool,
        file_meta: bool = False,
    ) -> JSONDataset:
        encodings = parent_encodings
        if SPECIFIC_CHARACTER_SET in ds:
            encodings = self._charset(ds)
        out: JSONDataset = {}
        # The elements as pydicom holds them (raw ones stay raw, deferred values
        # on disk), without a Tag() and get_item() call for each.
        for base_tag, item in list(ds.items()):
            tag = int(base_tag)
            if not in_json(tag, top=top, file_meta=file_meta):
                continue
            key = f"{tag:08X}"
            try:
                if top and tag == PIXEL_DATA:
                    vr = self._resolve_vr(ds, item, deferred=item.value is None)
                    self._encoded.pixel_data = PixelDataElement(item, vr)
                    out[key] = {"vr": vr}
                    if self._pixel_data_uri is not None:
                        out[key]["BulkDataURI"] = self._pixel_data_uri
                else:
                    out[key] = self._element(ds, item, encodings, path + key)
            except (TruncatedDicomError, MalformedDicomError):
                raise
            except Exception as exc:  # pydicom raises many types on bad data
                raise element_error(key, exc) from exc
        return out

    def _charset(self, ds: Dataset) -> list[str]:
        item = ds.get_item(SPECIFIC_CHARACTER_SET, keep_deferred=True)
        if isinstance(item, RawDataElement):
            return charset_encodings(item.value or b"")
        value = item.value
        terms = list(value) if isinstance(value, MultiValue | list) else [value]
        return encodings_of([t for t in (str(t).strip() for t in terms if t is not None)])

    # -- elements ---------------------------------------------------------------

    def _resolve_vr(
        self, ds: Dataset, item: RawDataElement | DataElement, *, deferred: bool
    ) -> str:
        vr = item.VR
        if isinstance(item, DataElement):
            if vr is None or " or " in vr:
                correct_ambiguous_vr_element(item, ds, self._le)
            return str(item.VR)
        if vr is not None and vr != "UN" and " or " not in vr:
            return str(vr)
        if deferred and vr == "UN":
            # A large value encoded as UN: its dictionary VR, without reading it.
            try:
                vr = dictionary_VR(item.tag)
            except KeyError:
                return "UN"
        else:
            # Implicit VR: the public or private dictionary, whatever the value's
            # size, so that empty and large private values get their neighbours' VR.
            data: dict[str, Any] = {}
            raw_element_vr(item, data, encoding=None, ds=ds)
            vr = data.get("VR") or "UN"
        if " or " in vr and not deferred:
            elem = ds[item.tag]
            correct_ambiguous_vr_element(elem, ds, self._le)
            vr = str(elem.VR)
        if " or " in vr:
            vr = "OW" if "OW" in vr else vr.split(" or ")[0]
        return str(vr)

    def _element(
        self,
        ds: Dataset,
        item: RawDataElement | DataElement,
        encodings: list[str],
        path: str,
    ) -> JSONDataset:
        deferred = isinstance(item, RawDataElement) and item.value is None and item.length != 0
        vr = self._resolve_vr(ds, item, deferred=deferred)
        if vr == "SQ":
            return self._sequence(ds, item, encodings, path)
        if isinstance(item, RawDataElement):
            if deferred:
                raw = self._read_deferred(item)
            else:
                raw = item.value or b""
                if item.length != 0xFFFFFFFF and len(raw) < item.length:
                    raise TruncatedDicomError(
                        f"element ({item.tag >> 16:04X},{item.tag & 0xFFFF:04X}) "
                        f"announces {item.length} bytes, file holds {len(raw)}"
                    )
            if item.length == 0xFFFFFFFF:
                self._encoded.undefined_length.append(path)
            if vr in BINARY_VRS:
                return self._binary(int(item.tag), vr, raw, path)
            return json_from_bytes(vr, raw, self._endian, encodings)
        if item.is_undefined_length:
            self._encoded.undefined_length.append(path)
        if vr in BINARY_VRS:
            value = item.value
            if value is None or isinstance(value, MultiValue | list):
                return {"vr": vr}
            return self._binary(int(item.tag), vr, bytes(value), path)
        return json_from_element(vr, item.value)

    def _sequence(
        self,
        ds: Dataset,
        item: RawDataElement | DataElement,
        encodings: list[str],
        path: str,
    ) -> JSONDataset:
        elem = ds[item.tag] if isinstance(item, RawDataElement) else item
        seq = elem.value
        if getattr(elem, "is_undefined_length", False) or (
            isinstance(item, RawDataElement) and item.length == 0xFFFFFFFF
        ):
            self._encoded.undefined_length.append(path)
        if not seq:
            return {"vr": "SQ"}
        if not isinstance(seq, Sequence | list):
            raise MalformedDicomError(f"sequence {path} holds no items")
        items = []
        for index, child in enumerate(seq):
            if getattr(child, "is_undefined_length_sequence_item", False):
                self._encoded.undefined_length.append(f"{path}/{index}")
            items.append(self._dataset(child, encodings, f"{path}/{index}/", top=False))
        return {"vr": "SQ", "Value": items}

    def _binary(self, tag: int, vr: str, raw: bytes, path: str) -> JSONDataset:
        if raw and not self._le and vr in WORD_WIDTH:
            raw = swap_bytes(raw, WORD_WIDTH[vr])
        return binary_json(self._encoded, self._policy, tag, vr, raw, path)

    def _read_deferred(self, item: RawDataElement) -> bytes:
        """Read a value pydicom left on disk."""
        return read_deferred(self._fp, item, is_little_endian=self._le, file_size=self._file_size)
