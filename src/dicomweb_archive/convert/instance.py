"""Convert one instance: metadata, frames, bulk data and info, written atomically.

The instance's ``metadata.gz`` is written last; it is the commit point.  Until it
exists the instance is not part of the archive, so a run killed half-way leaves
only unreferenced files that the next run overwrites.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydicom.dataelem import DataElement, RawDataElement

from dicomweb_archive import tags, uids
from dicomweb_archive.convert.inputs import InputRef
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.errors import (
    DicomwebArchiveError,
    InvalidInputError,
    MalformedDicomError,
    NotAnInstanceError,
)
from dicomweb_archive.model import multipart, paths, transcoded
from dicomweb_archive.model.attributes import AVAILABLE_TRANSFER_SYNTAX_UID
from dicomweb_archive.model.transcoded import SourceDigest
from dicomweb_archive.p10 import frames as framing
from dicomweb_archive.p10.jsonmodel import (
    EXTENDED_OFFSET_TABLE,
    EXTENDED_OFFSET_TABLE_LENGTHS,
    BulkPolicy,
    JSONEncoder,
    swap_bytes,
)
from dicomweb_archive.p10.reader import ParsedInstance, read_instance
from dicomweb_archive.store.directory import Archive
from dicomweb_archive.store.packing import ensure_unpacked
from dicomweb_archive.store.studies import is_packed, study_lock
from dicomweb_archive.types import JSONDataset
from dicomweb_archive.version import __version__

Status = Literal["converted", "updated", "unchanged", "skipped", "failed"]
INFO_FORMAT = "dicomweb-archive/info"


@dataclass
class InstanceOutcome:
    """What became of one input."""

    name: str
    status: Status
    reason: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    frames: int = 0
    size: int = 0
    warnings: list[str] = field(default_factory=list)


class _InstanceWriter:
    def __init__(self, archive: Archive, options: ConvertOptions, parsed: ParsedInstance):
        self.archive = archive
        self.options = options
        self.parsed = parsed
        self.study = parsed.study_instance_uid
        self.series = parsed.series_instance_uid
        self.sop = parsed.sop_instance_uid
        self.changed = False
        self.pixel_item: tuple[RawDataElement | DataElement, str] | None = None
        self.warnings: list[str] = []
        # An earlier primary HTJ2K transcoding (model.transcoded): the digest
        # its source frames had, and whether the frames are those again.
        self.kept_digest: str | None = None
        self.frames_kept = False
        self.frames_changed = False

    def write_bulk(self, path: str, vr: str, value: bytes) -> str:
        digest = hashlib.sha256(value).hexdigest()
        body = (
            multipart.header("application/octet-stream", paths.bulkdata_path(self.study, digest)),
            value,
            multipart.TRAILER,
        )
        self._check_delimiter(value, f"bulk data {path}")
        if self.archive.write_if_absent(paths.bulkdata_path(self.study, digest), *body):
            self.changed = True
        return paths.bulkdata_uri(digest)

    def pixel_data(self, item: RawDataElement | DataElement, vr: str) -> JSONDataset:
        self.pixel_item = (item, vr)
        return {"vr": vr, "BulkDataURI": paths.pixel_data_uri(self.series, self.sop)}

    def _check_delimiter(self, payload: bytes, what: str) -> None:
        if multipart.contains_delimiter(payload):
            raise MalformedDicomError(
                f"{self.parsed.name}: {what} contains the archive's multipart boundary"
            )

    def write_frames(
        self, encoder: JSONEncoder, meta: JSONDataset
    ) -> tuple[framing.FrameInfo | None, int]:
        if self.pixel_item is None:
            self._remove_frames_from(1)
            return None, 0
        ts = self.parsed.transfer_syntax_uid
        info, reader = self._open_pixel_data()
        if ts in uids.VIDEO_TRANSFER_SYNTAXES:
            stream = framing.video_stream(reader, info)
            vr = info.pixel_data_vr
            meta[tags.PixelData] = {
                "vr": vr,
                "BulkDataURI": self.write_bulk(tags.PixelData, vr, stream),
            }
            self._remove_frames_from(1)
            return info, 0
        frames = self._frames(encoder, meta, info, reader)
        if self.kept_digest is not None:
            # Frames replaced by their HTJ2K encoding stay so if they came from these.
            digest = SourceDigest(meta)
            count = 0
            for frame in frames:
                digest.update(frame)
                count += 1
            if digest.hexdigest() == self.kept_digest:
                self.frames_kept = True
                return info, count
            info, reader = self._open_pixel_data()
            frames = self._frames(encoder, meta, info, reader)
        frame_ts = uids.frame_transfer_syntax(ts)
        part_type = multipart.content_type(uids.frame_media_type(frame_ts), frame_ts)
        count = 0
        for count, frame in enumerate(frames, 1):
            target = paths.frame_path(self.study, self.series, self.sop, count)
            if self.options.frames == "raw":
                written = self.archive.write(target, frame)
            else:
                self._check_delimiter(frame, f"frame {count}")
                written = self.archive.write(
                    target, multipart.header(part_type, target), frame, multipart.TRAILER
                )
            self.changed |= written
            self.frames_changed |= written
        self._remove_frames_from(count + 1)
        return info, count

    def _open_pixel_data(self) -> tuple[framing.FrameInfo, framing.PixelDataReader]:
        assert self.pixel_item is not None
        item, vr = self.pixel_item
        parsed = self.parsed
        reader = framing.PixelDataReader(parsed.fp, item, file_size=parsed.size, name=parsed.name)
        info = framing.FrameInfo(
            encapsulated=framing.is_encapsulated(parsed.transfer_syntax_uid),
            pixel_data_vr=vr,
            undefined_length=reader.undefined_length,
        )
        return info, reader

    def _frames(
        self,
        encoder: JSONEncoder,
        meta: JSONDataset,
        info: framing.FrameInfo,
        reader: framing.PixelDataReader,
    ) -> Iterator[bytes]:
        parsed = self.parsed
        if info.encapsulated:
            return framing.encapsulated_frames(
                reader,
                number_of_frames=_frames_hint(meta),
                extended_offsets=self._extended_offsets(encoder),
                info=info,
            )
        return framing.native_frames(
            reader,
            framing.PixelLayout.from_metadata(meta, parsed.name),
            is_little_endian=parsed.is_little_endian,
            vr=info.pixel_data_vr,
            info=info,
        )

    def _extended_offsets(self, encoder: JSONEncoder) -> tuple[bytes, bytes] | None:
        ds = self.parsed.dataset
        if EXTENDED_OFFSET_TABLE not in ds or EXTENDED_OFFSET_TABLE_LENGTHS not in ds:
            return None
        values = []
        for tag in (EXTENDED_OFFSET_TABLE, EXTENDED_OFFSET_TABLE_LENGTHS):
            item = ds.get_item(tag, keep_deferred=True)
            value = item.value
            if value is None and isinstance(item, RawDataElement):
                value = encoder.read_deferred(item)
            values.append(bytes(value or b""))
        if not values[0] or not values[1]:
            return None
        if not self.parsed.is_little_endian:
            values = [swap_bytes(v, 8) for v in values]
        return values[0], values[1]

    def _remove_frames_from(self, first: int) -> None:
        folder = self.archive.path(
            f"{paths.instance_dir(self.study, self.series, self.sop)}/frames"
        )
        if not folder.is_dir():
            return
        for entry in os.scandir(folder):
            if entry.name.isdigit() and int(entry.name) >= first:
                os.unlink(entry.path)
                self.changed = self.frames_changed = True

    def remove_htj2k(self) -> None:
        """Drop an HTJ2K alternate (or staged primary) made from other frames."""
        folder = self.archive.path(paths.htj2k_dir(self.study, self.series, self.sop))
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            self.changed = True


def _frames_hint(meta: JSONDataset) -> int:
    value = meta.get(tags.NumberOfFrames, {}).get("Value")
    if value and isinstance(value[0], int | float) and value[0] >= 1:
        return int(value[0])
    return 1


def _file_meta_json(parsed: ParsedInstance) -> JSONDataset | None:
    if parsed.file_meta is None:
        return None
    encoder = JSONEncoder(
        parsed.fp,
        is_little_endian=True,
        policy=BulkPolicy(1 << 30, 1 << 30),
        write_bulk=lambda path, vr, value: "",
        pixel_data=lambda item, vr: {"vr": vr},
    )
    try:
        return encoder.encode_file_meta(parsed.file_meta)
    except MalformedDicomError as exc:
        raise MalformedDicomError(f"{parsed.name}: unreadable file meta: {exc}") from exc


def convert_parsed(
    archive: Archive, options: ConvertOptions, parsed: ParsedInstance
) -> InstanceOutcome:
    """Write one parsed instance into ``archive``.

    A packed study is unpacked first; the study's lock, held shared while the
    instance is written, keeps packing out meanwhile.
    """
    lock = study_lock(parsed.study_instance_uid)
    while True:
        with archive.lock(lock, shared=True):
            if not is_packed(archive, parsed.study_instance_uid):
                return _write_instance(archive, options, parsed)
        with archive.lock(lock):
            ensure_unpacked(archive, parsed.study_instance_uid)


def _write_instance(
    archive: Archive, options: ConvertOptions, parsed: ParsedInstance
) -> InstanceOutcome:
    writer = _InstanceWriter(archive, options, parsed)
    study, series, sop = writer.study, writer.series, writer.sop
    info_path = paths.instance_info(study, series, sop)
    old = archive.read_json_gz(info_path) if archive.exists(info_path) else None
    record = transcoded.record_of(old)
    staged = archive.path(paths.htj2k_dir(study, series, sop)).is_dir()
    if record and record["mode"] == transcoded.PRIMARY and not staged:
        writer.kept_digest = record["source"]["digest"]
    encoder = JSONEncoder(
        parsed.fp,
        is_little_endian=parsed.is_little_endian,
        policy=BulkPolicy(options.public_bulk_size, options.private_bulk_size),
        write_bulk=writer.write_bulk,
        pixel_data=writer.pixel_data,
        file_size=parsed.size,
    )
    meta = encoder.encode(parsed.dataset)
    frame_info, count = writer.write_frames(encoder, meta)
    meta[AVAILABLE_TRANSFER_SYNTAX_UID] = {
        "vr": "UI",
        "Value": [uids.frame_transfer_syntax(parsed.transfer_syntax_uid)],
    }
    info: dict[str, Any] = {
        "format": INFO_FORMAT,
        "version": 1,
        "writer": f"dicomweb-archive {__version__}",
        "source": {"name": os.path.basename(parsed.name), "size": parsed.size},
        "transferSyntaxUID": parsed.transfer_syntax_uid,
        "fileMeta": _file_meta_json(parsed),
        "preamble": base64.b64encode(parsed.preamble).decode() if parsed.preamble else None,
        "encoding": {
            "implicitVR": parsed.is_implicit_vr,
            "littleEndian": parsed.is_little_endian,
            "deflated": parsed.is_deflated,
        },
        "undefinedLength": encoder.notes.undefined_length,
        "pixelData": frame_info.to_json() if frame_info else None,
    }
    if record and writer.frames_kept:  # still the HTJ2K of these frames
        meta, info = transcoded.primary_documents(meta, info, record)
    elif (
        record
        and record["mode"] == transcoded.ALTERNATE
        and not writer.frames_changed
        and record["source"].get("imagePixel") == transcoded.image_pixel(meta)
    ):
        info[transcoded.RECORD] = record  # the alternate still matches the frames
    elif record or (staged and writer.frames_changed):
        writer.remove_htj2k()  # made from other frames, or left by a killed run
    metadata_path = paths.instance_metadata(study, series, sop)
    existed = archive.exists(metadata_path)
    # The info's source name varies between identical copies; compare without it.
    if old is not None and {k: v for k, v in old.items() if k != "source"} == {
        k: v for k, v in info.items() if k != "source"
    }:
        info = old
    writer.changed |= archive.write_json_gz(info_path, info)
    writer.changed |= archive.write_json_gz(metadata_path, [meta])
    status: Status = ("updated" if existed else "converted") if writer.changed else "unchanged"
    return InstanceOutcome(
        name=parsed.name,
        status=status,
        study_instance_uid=study,
        series_instance_uid=series,
        sop_instance_uid=sop,
        frames=count,
        size=parsed.size,
        warnings=writer.warnings,
    )


def convert_input(root: str, options: ConvertOptions, ref: InputRef) -> InstanceOutcome:
    """Convert one input; every failure becomes an outcome, never an exception."""
    archive = Archive(root)
    try:
        with ref.open() as fp:
            parsed = read_instance(fp, ref.name)
            return convert_parsed(archive, options, parsed)
    except NotAnInstanceError as exc:
        return InstanceOutcome(ref.name, "skipped", reason=_reason(exc, ref.name))
    except InvalidInputError as exc:
        return InstanceOutcome(ref.name, "failed", reason=_reason(exc, ref.name))
    except DicomwebArchiveError as exc:
        return InstanceOutcome(ref.name, "failed", reason=_reason(exc, ref.name))
    except OSError as exc:
        return InstanceOutcome(ref.name, "failed", reason=f"cannot read: {exc.strerror or exc}")
    except Exception as exc:  # a bug must not stop the other inputs
        return InstanceOutcome(
            ref.name, "failed", reason=f"internal error: {type(exc).__name__}: {exc}"
        )


def _reason(exc: Exception, name: str) -> str:
    text = str(exc)
    prefix = f"{name}: "
    return text[len(prefix) :] if text.startswith(prefix) else text
