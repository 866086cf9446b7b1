"""Store one instance: metadata, frames, bulk data and info, whole or not at all.

:func:`store_instance` is the one write path of a P10 instance into the archive,
for ``dwa convert`` and STOW-RS alike.  Every changed file of the instance is
staged and checked first; only then are they put in place, ``metadata.gz`` last
(see :mod:`dicomweb_archive.store.staging` for the order and how a killed write
is finished).  A failed input leaves the archive as it was, and one instance has
one writer at a time, across processes.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from dicomweb_archive import tags, uids
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.convert.transforms import transform_instance
from dicomweb_archive.errors import (
    DuplicateInstanceError,
    MalformedDicomError,
    ResourceNotFoundError,
)
from dicomweb_archive.model import multipart, paths, transcoded
from dicomweb_archive.model.transcoded import Reconversion, SourceDigest
from dicomweb_archive.p10 import frames as framing
from dicomweb_archive.p10.bulkdata import BulkPolicy, BulkValue
from dicomweb_archive.p10.encoded import EncodedDataset
from dicomweb_archive.p10.explicitjson import encode_parsed
from dicomweb_archive.p10.pixeldata import PixelDataElement, read_frames, read_video
from dicomweb_archive.p10.reader import ParsedInstance
from dicomweb_archive.store import registry
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import Store
from dicomweb_archive.store.manifest import DuplicatePolicy, duplicate_policy
from dicomweb_archive.store.removal import Target, delete
from dicomweb_archive.store.session import writing_study
from dicomweb_archive.store.staging import InstanceUpdate, instance_lock
from dicomweb_archive.types import InstanceKey, JSONDataset
from dicomweb_archive.version import __version__

Status = Literal["converted", "updated", "unchanged", "skipped", "failed"]
INFO_FORMAT = "dicomweb-archive/info"
#: How every warning about a replaced instance starts (the overwrite policy).
REPLACED = "replaced instance "


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
    #: Refused by the duplicates policy (``failed``; its UIDs are the refused instance's).
    duplicate: bool = False

    @property
    def key(self) -> InstanceKey | None:
        """Where the instance is in the archive, once its UIDs were read."""
        if self.study_instance_uid and self.series_instance_uid and self.sop_instance_uid:
            return InstanceKey(
                self.study_instance_uid, self.series_instance_uid, self.sop_instance_uid
            )
        return None


def store_instance(
    archive: Archive, options: ConvertOptions, parsed: ParsedInstance, *, own_source: bool = False
) -> InstanceOutcome:
    """Store one parsed instance in ``archive``; raises what makes it unstorable.

    Storing the same instance again changes nothing (``unchanged``): the stored
    info keeps naming the source it came from first, unless ``own_source`` (a
    run replaying its copies of one instance in input order names the first).
    A packed study is unpacked first; packing waits while the instance is written.
    """
    parsed = transform_instance(options, parsed)
    key = InstanceKey(
        parsed.study_instance_uid, parsed.series_instance_uid, parsed.sop_instance_uid
    )
    policy = _Policy(archive, options)
    replaced: list[str] = []
    while True:
        with (
            writing_study(archive, parsed.study_instance_uid) as files,
            files.lock(instance_lock(key)),
        ):
            update = InstanceUpdate(files, key)
            update.recover()
            entry = registry.registered(files, key.sop_instance_uid)
            elsewhere = registry.committed(archive, entry)
            if elsewhere is None or elsewhere == key:
                try:
                    writer = _InstanceWriter(update, options, parsed, policy, entry)
                    outcome = writer.write(own_source=own_source)
                except BaseException:
                    update.abandon()
                    raise
                if replaced:
                    outcome.status = "updated"  # the SOP Instance UID was stored before
                    outcome.warnings.extend(replaced)
                return outcome
            if policy.resolve() == "reject":
                raise DuplicateInstanceError(
                    f"{parsed.name}: SOP Instance UID {key.sop_instance_uid} is stored "
                    f"already in study {elsewhere.study_instance_uid}, series "
                    f"{elsewhere.series_instance_uid}",
                    key,
                )
        # Overwrite: the instance elsewhere goes first, under its own study's lock
        # (never while this study's and this instance's locks are held).
        with contextlib.suppress(ResourceNotFoundError):  # deleted meanwhile
            delete(archive, Target(*elsewhere))
        replaced.append(
            f"{REPLACED}{key.sop_instance_uid} stored in study "
            f"{elsewhere.study_instance_uid}, series {elsewhere.series_instance_uid}"
        )


class _Policy:
    """The duplicates policy of one write, the manifest read only when needed."""

    def __init__(self, archive: Archive, options: ConvertOptions) -> None:
        self.archive = archive
        self.chosen: DuplicatePolicy | None = options.on_duplicate

    def resolve(self) -> DuplicatePolicy:
        if self.chosen is None:
            self.chosen = duplicate_policy(self.archive.store)
        return self.chosen


class _InstanceWriter:
    """The steps of writing one instance; the caller holds its study unpacked."""

    def __init__(
        self,
        update: InstanceUpdate,
        options: ConvertOptions,
        parsed: ParsedInstance,
        policy: _Policy,
        entry: InstanceKey | None,
    ):
        self.update = update
        self.policy = policy
        #: Where the registry said the SOP Instance UID is (under the instance's lock).
        self.entry = entry
        self.files: Store = update.store
        self.options = options
        self.parsed = parsed
        self.study = parsed.study_instance_uid
        self.series = parsed.series_instance_uid
        self.sop = parsed.sop_instance_uid
        self.info_path = paths.instance_info(self.study, self.series, self.sop)
        self.metadata_path = paths.instance_metadata(self.study, self.series, self.sop)
        #: Bulk data to write once every file is checked: (path, parts).
        self.bulk: list[tuple[str, tuple[bytes, ...]]] = []
        self.warnings: list[str] = []

    def write(self, *, own_source: bool = False) -> InstanceOutcome:
        files = self.files
        # A new instance (no folder yet: a conversion's common case) has none of
        # the files looked for here; one look instead of three.
        new = self.update.new
        old = None if new else self._stored_info()
        reconversion = Reconversion(
            transcoded.record_of(old),
            staged=not new and files.exists(paths.htj2k_dir(self.study, self.series, self.sop)),
        )
        encoded = encode_parsed(
            self.parsed, BulkPolicy(self.options.public_bulk_size, self.options.private_bulk_size)
        )
        for bulk in encoded.bulk_data:
            self.write_bulk(bulk)
        frames_kept, frame_info, count = self.write_pixel_data(
            encoded, reconversion.replaced_digest
        )
        encoded.metadata[tags.AvailableTransferSyntaxUID] = {
            "vr": "UI",
            "Value": [uids.frame_transfer_syntax(self.parsed.transfer_syntax_uid)],
        }
        meta, info, drop_htj2k = reconversion.documents(
            encoded.metadata,
            self.info(encoded, frame_info),
            frames_kept=frames_kept,
            frames_changed=self.update.frames_changed,
        )
        # The info's source name varies between identical copies; compare without it.
        if not own_source and old is not None and _without_source(old) == _without_source(info):
            info = old
        existed = not new and files.exists(self.metadata_path)
        self.update.stage_json(paths.INFO, info)
        other_metadata = self.update.stage_json(paths.METADATA, [meta])
        if existed and (other_metadata or self.update.frames_changed):
            self._duplicate()
        if self.entry != self.update.key:
            registry.register(files, self.update.key, absent=self.entry is None)
        self.update.commit(frames=count, bulk=self.bulk, drop_htj2k=drop_htj2k)
        changed = self.update.changed
        status: Status = ("updated" if existed else "converted") if changed else "unchanged"
        return InstanceOutcome(
            name=self.parsed.name,
            status=status,
            study_instance_uid=self.study,
            series_instance_uid=self.series,
            sop_instance_uid=self.sop,
            frames=count,
            size=self.parsed.size,
            warnings=self.warnings,
        )

    def _stored_info(self) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = self.files.read_json_gz(self.info_path)
        except ResourceNotFoundError:
            return None
        return info

    def _duplicate(self) -> None:
        """The instance is stored with other content: refuse, or go on replacing it."""
        if self.policy.resolve() == "reject":
            raise DuplicateInstanceError(
                f"{self.parsed.name}: SOP Instance UID {self.sop} is stored already "
                "with other content",
                self.update.key,
            )
        self.warnings.append(f"{REPLACED}{self.sop} stored with other content")

    def info(self, encoded: EncodedDataset, frame_info: framing.FrameInfo | None) -> dict[str, Any]:
        """What regenerating the P10 file needs beyond the metadata (``info.json.gz``)."""
        parsed = self.parsed
        return {
            "format": INFO_FORMAT,
            "version": 1,
            "writer": f"dicomweb-archive {__version__}",
            # A de-identified instance does not keep its file's name, which may name the patient.
            "source": {
                "name": None if self.options.deidentify else os.path.basename(parsed.name),
                "size": parsed.size,
            },
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

    # -- bulk data and frames ---------------------------------------------------------

    def write_bulk(self, bulk: BulkValue) -> None:
        target = paths.bulkdata_path(self.study, bulk.digest)
        self._check_delimiter(bulk.value, f"bulk data {bulk.path}")
        body = (multipart.header("application/octet-stream", target), bulk.value, multipart.TRAILER)
        self.bulk.append((target, body))

    def _check_delimiter(self, payload: bytes, what: str) -> None:
        if multipart.contains_delimiter(payload):
            raise MalformedDicomError(
                f"{self.parsed.name}: {what} contains the archive's multipart boundary"
            )

    def write_pixel_data(
        self, encoded: EncodedDataset, replaced_digest: str | None
    ) -> tuple[bool, framing.FrameInfo | None, int]:
        """Write the frames (or a video's stream as bulk data).

        Returns whether the stored frames were kept (the HTJ2K of these same
        frames, see :class:`~dicomweb_archive.model.transcoded.Reconversion`),
        how the source stored them, and their number.
        """
        meta = encoded.metadata
        pixel = encoded.pixel_data
        if pixel is None:
            self.update.stage_frames_count(0)
            return False, None, 0
        if self.parsed.transfer_syntax_uid in uids.VIDEO_TRANSFER_SYNTAXES:
            info, stream = read_video(self.parsed, pixel)
            bulk = BulkValue.of(tags.PixelData, info.pixel_data_vr, stream)
            self.write_bulk(bulk)
            meta[tags.PixelData] = {"vr": bulk.vr, "BulkDataURI": bulk.uri}
            self.update.stage_frames_count(0)
            return False, info, 0
        if replaced_digest is not None:
            kept = self._replaced_frames(pixel, meta, replaced_digest)
            if kept is not None:
                return True, *kept
        info, frames = read_frames(self.parsed, pixel, meta)
        return False, info, self.write_frames(frames)

    def _replaced_frames(
        self, pixel: PixelDataElement, meta: JSONDataset, digest: str
    ) -> tuple[framing.FrameInfo, int] | None:
        """The frames' info and number if they are those a primary transcoding replaced."""
        info, frames = read_frames(self.parsed, pixel, meta)
        source = SourceDigest(meta)
        count = 0
        for frame in frames:
            source.update(frame)
            count += 1
        return (info, count) if source.hexdigest() == digest else None

    def write_frames(self, frames: Iterator[bytes]) -> int:
        """Stage every frame that differs from the stored one; returns their number."""
        frame_ts = uids.frame_transfer_syntax(self.parsed.transfer_syntax_uid)
        part_type = multipart.content_type(uids.frame_media_type(frame_ts), frame_ts)
        count = 0
        for count, frame in enumerate(frames, 1):
            name = f"{paths.FRAMES}/{count}"
            if self.options.frames == "raw":
                self.update.stage(name, frame)
            else:
                self._check_delimiter(frame, f"frame {count}")
                target = paths.frame_path(self.study, self.series, self.sop, count)
                self.update.stage(
                    name, multipart.header(part_type, target), frame, multipart.TRAILER
                )
        self.update.stage_frames_count(count)
        return count


def _without_source(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k != "source"}
