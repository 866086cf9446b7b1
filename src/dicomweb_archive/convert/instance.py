"""Convert one instance: metadata, frames, bulk data and info, written atomically.

The instance's ``metadata.gz`` is written last; it is the commit point.  Until it
exists the instance is not part of the archive, so a run killed half-way leaves
only unreferenced files that the next run overwrites.
"""

from __future__ import annotations

import base64
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Literal

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
from dicomweb_archive.p10.bulkdata import BulkPolicy, BulkValue
from dicomweb_archive.p10.jsonmodel import EncodedDataset, encode_instance
from dicomweb_archive.p10.pixeldata import read_frames, read_video
from dicomweb_archive.p10.reader import ParsedInstance, read_instance
from dicomweb_archive.store.directory import Archive
from dicomweb_archive.store.packing import ensure_unpacked
from dicomweb_archive.store.studies import is_packed, study_lock
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
        self.warnings: list[str] = []
        # An earlier primary HTJ2K transcoding (model.transcoded): the digest
        # its source frames had, and whether the frames are those again.
        self.kept_digest: str | None = None
        self.frames_kept = False
        self.frames_changed = False

    def write_bulk(self, bulk: BulkValue) -> None:
        target = paths.bulkdata_path(self.study, bulk.digest)
        self._check_delimiter(bulk.value, f"bulk data {bulk.path}")
        body = (multipart.header("application/octet-stream", target), bulk.value, multipart.TRAILER)
        if self.archive.write_if_absent(target, *body):
            self.changed = True

    def _check_delimiter(self, payload: bytes, what: str) -> None:
        if multipart.contains_delimiter(payload):
            raise MalformedDicomError(
                f"{self.parsed.name}: {what} contains the archive's multipart boundary"
            )

    def write_frames(self, encoded: EncodedDataset) -> tuple[framing.FrameInfo | None, int]:
        meta = encoded.metadata
        pixel = encoded.pixel_data
        if pixel is None:
            self._remove_frames_from(1)
            return None, 0
        ts = self.parsed.transfer_syntax_uid
        if ts in uids.VIDEO_TRANSFER_SYNTAXES:
            info, stream = read_video(self.parsed, pixel)
            bulk = BulkValue.of(tags.PixelData, info.pixel_data_vr, stream)
            self.write_bulk(bulk)
            meta[tags.PixelData] = {"vr": bulk.vr, "BulkDataURI": bulk.uri}
            self._remove_frames_from(1)
            return info, 0
        info, frames = read_frames(self.parsed, pixel, meta)
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
            info, frames = read_frames(self.parsed, pixel, meta)
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
    encoded = encode_instance(
        parsed, BulkPolicy(options.public_bulk_size, options.private_bulk_size)
    )
    for bulk in encoded.bulk_data:
        writer.write_bulk(bulk)
    frame_info, count = writer.write_frames(encoded)
    meta = encoded.metadata
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
        "fileMeta": encoded.file_meta,
        "preamble": base64.b64encode(parsed.preamble).decode() if parsed.preamble else None,
        "encoding": {
            "implicitVR": parsed.is_implicit_vr,
            "littleEndian": parsed.is_little_endian,
            "deflated": parsed.is_deflated,
        },
        "undefinedLength": encoded.undefined_length,
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
