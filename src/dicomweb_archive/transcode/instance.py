"""Transcode one archived instance's frames to HTJ2K, beside them or in their place.

``alternate``: ``htj2k/{n}`` is written for every frame, each a stored body like
``frames/{n}`` whose part is ``Content-Type: image/jphc; transfer-syntax=…``;
then the record (:mod:`dicomweb_archive.model.transcoded`) goes into the
instance's ``info.json.gz``.  The record is the commit point: an ``htj2k/``
folder without one is not part of the archive, and is rewritten or removed.

``primary``: the HTJ2K frames are staged in ``htj2k/{n}`` (labelled with the
place they are going to), then the info is rewritten with a ``primary`` record,
each ``frames/{n}`` is replaced by a rename, the metadata is rewritten, and
``htj2k/`` is removed last.  Every stored frame names its own transfer syntax in
its part header, so frames stay decodable at every step, and a primary record
beside an ``htj2k/`` folder means a run was interrupted: the next one finishes it.

Every frame is decoded before anything is replaced or recorded; a frame that
cannot be decoded leaves the instance as it was (without an alternate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from dicomweb_archive import tags, uids
from dicomweb_archive.batch import failure_of
from dicomweb_archive.codec import htj2k
from dicomweb_archive.codec.decode import ImagePixel, decode_frame
from dicomweb_archive.errors import (
    DicomwebArchiveError,
    MalformedDicomError,
    ResourceNotFoundError,
    UnsupportedImageError,
)
from dicomweb_archive.model import multipart, paths, transcoded
from dicomweb_archive.model.transcoded import ALTERNATE, PRIMARY, RECORD
from dicomweb_archive.p10.frames import TRAILING_BYTES
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.base import Store
from dicomweb_archive.store.session import writing_study
from dicomweb_archive.store.staging import instance_lock
from dicomweb_archive.types import InstanceKey

Mode = Literal["alternate", "primary"]
Status = Literal["transcoded", "unchanged", "skipped", "failed", "none"]


@dataclass(frozen=True)
class TranscodeRequest:
    mode: Mode
    settings: htj2k.HTJ2KSettings
    #: The archive stores bare frames (``--frames raw``), not multipart bodies.
    raw_frames: bool = False


@dataclass
class TranscodeOutcome:
    """What became of one instance."""

    key: InstanceKey
    status: Status
    reason: str | None = None
    frames: int = 0
    #: Stored frame bytes read, and HTJ2K codestream bytes they became.
    bytes_in: int = 0
    bytes_out: int = 0
    #: The instance's metadata changed: its study's documents need a refresh.
    metadata_changed: bool = False


class _FrameError(DicomwebArchiveError):
    def __init__(self, number: int, cause: DicomwebArchiveError) -> None:
        super().__init__(f"frame {number} cannot be decoded: {cause}")


_OPENING = f"--{multipart.BOUNDARY}\r\n".encode("ascii")


def _payload(body: bytes, fallback_syntax: str, *, raw: bool) -> tuple[str, bytes]:
    """The transfer syntax and bytes of one stored frame (a multipart body or bare).

    Native frames come back as a view of ``body`` (decoding them only needs the
    buffer), which spares copying half a megabyte per CT frame.
    """
    if raw:
        return fallback_syntax, body
    end = body.find(b"\r\n\r\n")
    if not body.startswith(_OPENING) or end < 0 or not body.endswith(multipart.TRAILER):
        raise MalformedDicomError("stored frame is not a complete multipart body")
    syntax = fallback_syntax
    for line in body[:end].split(b"\r\n")[1:]:
        name, _, value = line.decode("ascii").partition(":")
        if name.strip().lower() != "content-type":
            continue
        for parameter in value.split(";")[1:]:
            key, _, found = parameter.strip().partition("=")
            if key.lower() == "transfer-syntax" and found:
                syntax = found.strip('"')
    view = memoryview(body)[end + 4 : len(body) - len(multipart.TRAILER)]
    return syntax, cast(bytes, view) if syntax == uids.ExplicitVRLittleEndian else bytes(view)


class _Instance:
    """One instance's files and the work on them; the caller holds the study's lock."""

    def __init__(self, files: Store, request: TranscodeRequest, key: InstanceKey) -> None:
        self.files = files
        self.request = request
        self.key = key
        self.meta_path = paths.instance_metadata(*key)
        self.info_path = paths.instance_info(*key)
        if not files.exists(self.meta_path):
            raise ResourceNotFoundError(f"instance {key.sop_instance_uid} is not in the archive")
        [self.meta] = files.read_json_gz(self.meta_path)
        self.info: dict[str, Any] = files.read_json_gz(self.info_path)

    def frame(self, number: int) -> str:
        return paths.frame_path(
            self.key.study_instance_uid,
            self.key.series_instance_uid,
            self.key.sop_instance_uid,
            number,
        )

    def alternate(self, number: int) -> str:
        return paths.htj2k_frame_path(
            self.key.study_instance_uid,
            self.key.series_instance_uid,
            self.key.sop_instance_uid,
            number,
        )

    @property
    def staging(self) -> str:
        return paths.htj2k_dir(*self.key)

    def outcome(self, status: Status, **fields: Any) -> TranscodeOutcome:
        return TranscodeOutcome(self.key, status, **fields)

    def read_frame(self, path: str, fallback_syntax: str) -> tuple[str, bytes]:
        return _payload(self.files.read(path), fallback_syntax, raw=self.request.raw_frames)

    def header(self, syntax: str, location: str) -> bytes:
        if self.request.raw_frames:
            return b""
        return multipart.header(multipart.content_type(htj2k.MEDIA_TYPE, syntax), location)

    def write_body(self, target: str, syntax: str, codestream: bytes, location: str) -> bool:
        """Write one HTJ2K frame; ``location`` is where it is to be served from."""
        if self.request.raw_frames:
            return self.files.write(target, codestream)
        if multipart.contains_delimiter(codestream):
            raise MalformedDicomError(f"{target}: codestream contains the multipart boundary")
        return self.files.write(
            target, self.header(syntax, location), codestream, multipart.TRAILER
        )

    def remove_staging(self) -> None:
        self.files.remove_tree(self.staging)

    # -- the work ---------------------------------------------------------------

    def run(self) -> TranscodeOutcome:
        record = transcoded.record_of(self.info)
        if record and record["mode"] == PRIMARY:
            if self.files.exists(self.staging):
                return self.promote(record)  # an interrupted run
            if record.get("psnr") == self.request.settings.psnr:
                return self.outcome("unchanged", frames=record["numberOfFrames"])
            # The frames it was made from are gone: no other HTJ2K can be made.
            return self.outcome(
                "skipped",
                reason=(
                    f"its frames are HTJ2K ({record['transferSyntaxUID']}) already "
                    "(--mode primary); the frames they replaced are gone"
                ),
            )
        pixel = self.info.get("pixelData") or {}
        count = int(pixel.get("numberOfFrames") or 0)
        if tags.PixelData not in self.meta or not count:
            return self.outcome("none")
        image = ImagePixel.from_metadata(self.meta)
        reason = htj2k.refusal(image)
        if not reason and pixel.get(TRAILING_BYTES) and self.request.mode == PRIMARY:
            # The source's bytes after its last frame would go with its frames.
            reason = "its Pixel Data holds bytes after the last frame; only an alternate keeps them"
        if reason:
            raise UnsupportedImageError(reason)
        if record and self.is_current(record, count):
            if self.request.mode == ALTERNATE:
                return self.outcome("unchanged", frames=count)
            return self.promote(self.as_primary(record, count))
        if record:  # stale: the record goes first, so no reader trusts it meanwhile
            self.info.pop(RECORD)
            self.files.write_json_gz(self.info_path, self.info)
        try:
            record = self.encode(image, count)
        except BaseException:
            self.remove_staging()
            raise
        if self.request.mode == ALTERNATE:
            self.commit(record)
            return self.outcome(
                "transcoded",
                frames=count,
                bytes_in=record["source"]["bytes"],
                bytes_out=record["bytes"],
            )
        return self.promote({**record, "mode": PRIMARY, "path": "frames"})

    def source_syntax(self) -> str:
        values = transcoded.values(self.meta, tags.AvailableTransferSyntaxUID)
        return str(values[0]) if values else uids.ExplicitVRLittleEndian

    def stored_bytes(self, count: int) -> int:
        return sum(self.files.stat(self.frame(n)).size for n in range(1, count + 1))

    def is_current(self, record: dict[str, Any], count: int) -> bool:
        """The recorded alternate was made from these frames with these settings.

        A conversion that changes the frames drops the record (convert.instance),
        so the frames are not read again: their count and size are checked.
        """
        if record.get("psnr") != self.request.settings.psnr:
            return False
        if record.get("numberOfFrames") != count:
            return False
        if record["source"].get("storedBytes") != self.stored_bytes(count):
            return False
        if record["source"].get("imagePixel") != transcoded.image_pixel(self.meta):
            return False
        return all(self.files.exists(self.alternate(n)) for n in range(1, count + 1))

    def encode(self, image: ImagePixel, count: int) -> dict[str, Any]:
        """Write ``htj2k/{n}`` for every frame; returns the record (not yet written)."""
        settings = self.request.settings
        primary = self.request.mode == PRIMARY
        # Only a primary transcoding needs a fingerprint of frames it replaces.
        digest = transcoded.SourceDigest(self.meta) if primary else None
        fallback = self.source_syntax()
        bytes_in = bytes_out = 0
        last: htj2k.EncodedFrame | None = None
        for number in range(1, count + 1):
            syntax, payload = self.read_frame(self.frame(number), fallback)
            if digest:
                digest.update(payload)
            bytes_in += len(payload)
            try:
                decoded = decode_frame(payload, syntax, image)
            except DicomwebArchiveError as exc:
                raise _FrameError(number, exc) from exc
            last = htj2k.encode_frame(decoded, image, settings)
            bytes_out += len(last.codestream)
            # Staged for a primary run: labelled with the place it is going to.
            location = self.frame(number) if primary else self.alternate(number)
            self.write_body(
                self.alternate(number), last.transfer_syntax_uid, last.codestream, location
            )
        if last is None:
            raise MalformedDicomError("the instance has no frames")
        self._remove_alternates_from(count + 1)
        native = image.rows * image.columns * image.samples_per_pixel * image.bits_allocated // 8
        return {
            "mode": ALTERNATE,
            "path": paths.HTJ2K,
            "transferSyntaxUID": last.transfer_syntax_uid,
            "mediaType": htj2k.MEDIA_TYPE,
            "photometricInterpretation": last.photometric_interpretation,
            "lossy": last.lossy,
            "psnr": settings.psnr,
            "lossyImageCompressionRatio": (
                round(native * count / bytes_out, 2) if last.lossy else None
            ),
            "lossyImageCompressionMethod": htj2k.LOSSY_METHOD if last.lossy else None,
            "numberOfFrames": count,
            "bytes": bytes_out,
            "encoder": htj2k.encoder_version(),
            "source": {
                "transferSyntaxUID": fallback,
                "photometricInterpretation": image.photometric_interpretation,
                "imagePixel": transcoded.image_pixel(self.meta),
                "digest": digest.hexdigest() if digest else None,
                "bytes": bytes_in,
                "storedBytes": self.stored_bytes(count),
                "lossyImageCompressionRatio": transcoded.values(
                    self.meta, tags.LossyImageCompressionRatio
                ),
                "lossyImageCompressionMethod": transcoded.values(
                    self.meta, tags.LossyImageCompressionMethod
                ),
            },
        }

    def as_primary(self, record: dict[str, Any], count: int) -> dict[str, Any]:
        """An alternate's record for promoting it: the frames' fingerprint added."""
        digest = transcoded.SourceDigest(self.meta)
        fallback = self.source_syntax()
        for number in range(1, count + 1):
            digest.update(self.read_frame(self.frame(number), fallback)[1])
        source = {**record["source"], "digest": digest.hexdigest()}
        return {**record, "mode": PRIMARY, "path": "frames", "source": source}

    def _remove_alternates_from(self, first: int) -> None:
        for entry in self.files.list(self.staging):
            if entry.name.isdigit() and int(entry.name) >= first:
                self.files.remove(f"{self.staging}/{entry.name}")

    def commit(self, record: dict[str, Any]) -> None:
        self.info[RECORD] = record
        self.files.write_json_gz(self.info_path, self.info)

    def promote(self, record: dict[str, Any]) -> TranscodeOutcome:
        """Put the staged ``htj2k/{n}`` in place of ``frames/{n}``; finish the documents.

        The info goes first: its primary record beside the staged folder marks
        the work as begun, so a killed run is finished by the next one.
        """
        count = int(record["numberOfFrames"])
        syntax = record["transferSyntaxUID"]
        meta, info = transcoded.primary_documents(self.meta, self.info, record)
        self.files.write_json_gz(self.info_path, info)
        for number in range(1, count + 1):
            staged = self.alternate(number)
            if not self.files.exists(staged):
                continue  # moved by an interrupted run
            header = self.header(syntax, self.frame(number))
            if self.files.read_range(staged, 0, len(header)) == header:
                self.files.move(staged, self.frame(number))
            else:  # an alternate's body, labelled with its own place
                _, codestream = self.read_frame(staged, syntax)
                self.write_body(self.frame(number), syntax, codestream, self.frame(number))
                self.files.remove(staged)
        self.files.write_json_gz(self.meta_path, [meta])
        self.remove_staging()
        return self.outcome(
            "transcoded",
            frames=count,
            bytes_in=record["source"]["bytes"],
            bytes_out=record["bytes"],
            metadata_changed=True,
        )


def transcode_instance(
    location: str, request: TranscodeRequest, key: InstanceKey
) -> TranscodeOutcome:
    """Transcode one instance (a worker's task); every failure becomes an outcome."""
    try:
        with (
            open_archive(location) as archive,
            writing_study(archive, key.study_instance_uid) as files,
            files.lock(instance_lock(key)),
        ):
            return _Instance(files, request, key).run()
    except Exception as exc:  # one bad instance must not stop the others
        failure = failure_of(exc)
        return TranscodeOutcome(key, "skipped" if failure.refused else "failed", failure.reason)
