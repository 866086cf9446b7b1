"""How an HTJ2K transcoding is recorded in an instance's ``info.json.gz``.

The record sits under the info key :data:`RECORD` (``"htj2k"``)::

    "htj2k": {
      "mode": "alternate",              # or "primary"
      "path": "htj2k",                  # folder of the HTJ2K frames below the
                                        # instance: "htj2k", or "frames" (primary)
      "transferSyntaxUID": "1.2.840.10008.1.2.4.202",   # .203 when lossy
      "mediaType": "image/jphc",
      "photometricInterpretation": "YBR_RCT",           # of the HTJ2K samples
      "lossy": false,
      "psnr": null,                     # the lossy target asked for
      "lossyImageCompressionRatio": null,       # this transcoding's, when lossy
      "lossyImageCompressionMethod": null,      # "ISO_15444_15" when lossy
      "numberOfFrames": 1,
      "bytes": 170977,                  # codestream bytes, all frames
      "encoder": "openjph 0.26.3",
      "source": {                       # what the HTJ2K frames were made from
        "transferSyntaxUID": "1.2.840.10008.1.2.1",
        "photometricInterpretation": "RGB",
        "imagePixel": {"00280002": [3], …},   # the image pixel attributes
        "digest": "sha256:…",           # of those and the frames (primary only)
        "bytes": 524288,                # frame bytes, and stored file bytes
        "storedBytes": 524520,
        "lossyImageCompressionRatio": [],       # the source's own values
        "lossyImageCompressionMethod": []
      }
    }

An alternate leaves metadata and frames alone; converting the instance again
keeps its record while the frames written are the same and the image pixel
attributes equal, and drops it (with ``htj2k/``) otherwise.  A primary transcoding replaces
the frames and rewrites the instance's metadata and info with
:func:`primary_documents`, from the record alone, so applying it again (a
resumed run, or a conversion of the same source) gives the same documents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

import orjson

from dicomweb_archive import tags
from dicomweb_archive.types import JSONDataset

RECORD: Final = "htj2k"
ALTERNATE: Final = "alternate"
PRIMARY: Final = "primary"


#: The attributes that, with the frames, decide what an HTJ2K encoding holds.
_IMAGE_PIXEL: Final = (
    tags.SamplesPerPixel,
    tags.PhotometricInterpretation,
    tags.PlanarConfiguration,
    tags.NumberOfFrames,
    tags.Rows,
    tags.Columns,
    tags.BitsAllocated,
    tags.BitsStored,
    tags.PixelRepresentation,
)


def values(meta: JSONDataset, key: str) -> list[Any]:
    found: list[Any] = meta.get(key, {}).get("Value") or []
    return list(found)


def image_pixel(meta: JSONDataset) -> dict[str, list[Any]]:
    """The image pixel description an encoding depends on, beside the frames."""
    return {key: values(meta, key) for key in _IMAGE_PIXEL}


class SourceDigest:
    """Fingerprint of an instance's frames and image pixel description.

    Kept for primary transcodings, whose source frames are gone: converting
    the same source again is recognised by it.
    """

    def __init__(self, meta: JSONDataset) -> None:
        description = image_pixel(meta)
        self._hash = hashlib.sha256(orjson.dumps(description, option=orjson.OPT_SORT_KEYS))

    def update(self, frame: bytes) -> None:
        self._hash.update(len(frame).to_bytes(8, "big"))
        self._hash.update(frame)

    def hexdigest(self) -> str:
        return f"sha256:{self._hash.hexdigest()}"


def record_of(info: dict[str, Any] | None) -> dict[str, Any] | None:
    """The HTJ2K record of an instance's info, if it has one."""
    if not info:
        return None
    record = info.get(RECORD)
    return record if isinstance(record, dict) and record.get("mode") else None


def primary_documents(
    meta: JSONDataset, info: dict[str, Any], record: dict[str, Any]
) -> tuple[JSONDataset, dict[str, Any]]:
    """The metadata and info of an instance whose frames are the record's HTJ2K.

    Everything set comes from the record, so the result is the same whether
    ``meta`` and ``info`` are the source's or were rewritten already.
    """
    meta = dict(meta)
    info = dict(info)
    syntax = record["transferSyntaxUID"]
    meta[tags.AvailableTransferSyntaxUID] = {"vr": "UI", "Value": [syntax]}
    meta[tags.PhotometricInterpretation] = {
        "vr": "CS",
        "Value": [record["photometricInterpretation"]],
    }
    if (values(meta, tags.SamplesPerPixel) or [1])[0] != 1:
        # PS3.5 Table 8.2.4-1: colour-by-pixel for JPEG 2000 family syntaxes.
        meta[tags.PlanarConfiguration] = {"vr": "US", "Value": [0]}
    if tags.PixelData in meta:
        meta[tags.PixelData] = {**meta[tags.PixelData], "vr": "OB"}
    if record["lossy"]:
        source = record["source"]
        meta[tags.LossyImageCompression] = {"vr": "CS", "Value": ["01"]}
        meta[tags.LossyImageCompressionRatio] = {
            "vr": "DS",
            "Value": [*source["lossyImageCompressionRatio"], record["lossyImageCompressionRatio"]],
        }
        meta[tags.LossyImageCompressionMethod] = {
            "vr": "CS",
            "Value": [
                *source["lossyImageCompressionMethod"],
                record["lossyImageCompressionMethod"],
            ],
        }
    info["transferSyntaxUID"] = syntax
    # Encapsulated Pixel Data is only ever Explicit VR Little Endian (PS3.5 A.4).
    info["encoding"] = {"implicitVR": False, "littleEndian": True, "deflated": False}
    info["pixelData"] = {
        "encapsulated": True,
        "numberOfFrames": record["numberOfFrames"],
        "vr": "OB",
        "undefinedLength": True,
        "basicOffsetTable": True,
        "extendedOffsetTable": False,
        "fragments": [],
    }
    info[RECORD] = record
    return meta, info


@dataclass(frozen=True)
class Reconversion:
    """An instance converted again: what becomes of the HTJ2K record its info held.

    A primary record stays when the new frames are the ones it replaced (same
    digest): the stored frames stay HTJ2K.  An alternate record stays when the
    frames and their image pixel description did not change.  Otherwise the
    record goes, and so do the HTJ2K frames made from other frames, or left
    staged by a run that was killed.
    """

    record: dict[str, Any] | None
    #: The instance has an ``htj2k/`` folder: an alternate, or a primary run's staging.
    staged: bool

    @property
    def replaced_digest(self) -> str | None:
        """The digest of the frames a completed primary transcoding replaced."""
        if self.record and self.record["mode"] == PRIMARY and not self.staged:
            return str(self.record["source"]["digest"])
        return None

    def documents(
        self,
        meta: JSONDataset,
        info: dict[str, Any],
        *,
        frames_kept: bool,
        frames_changed: bool,
    ) -> tuple[JSONDataset, dict[str, Any], bool]:
        """The metadata and info to write, and whether the HTJ2K frames must go."""
        record = self.record
        if record and frames_kept:  # still the HTJ2K of these frames
            meta, info = primary_documents(meta, info, record)
            return meta, info, False
        if (
            record
            and record["mode"] == ALTERNATE
            and not frames_changed
            and record["source"].get("imagePixel") == image_pixel(meta)
        ):
            info[RECORD] = record  # the alternate still matches the frames
            return meta, info, False
        return meta, info, bool(record) or (self.staged and frames_changed)
