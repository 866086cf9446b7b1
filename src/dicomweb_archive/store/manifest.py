"""The archive's manifest, ``dicomweb-archive.json``, and the options it records.

The manifest says the folder (or bucket) is an archive of this format and
records the options that shape stored bytes: how frames are stored, the
multipart boundary, the bulk data thresholds, the attributes added to the QIDO-RS
documents (``qidoFields``, present once set).  Every writer checks its options
against it, since mixing them would make one archive answer the same request in
two ways; a packed study's ZIP carries the same options in its comment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import orjson

from dicomweb_archive.errors import ArchiveError, ArchiveOptionsMismatchError, NotAnArchiveError
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.store.base import ReadableStore, Store

FORMAT = "dicomweb-archive"
FORMAT_VERSION = 1

FrameStorage = Literal["multipart", "raw"]
#: What a SOP Instance UID stored again with other content (or under another
#: study or series) does: refused, or it replaces the stored instance.
DuplicatePolicy = Literal["reject", "overwrite"]
DUPLICATE_POLICIES: tuple[DuplicatePolicy, ...] = ("reject", "overwrite")
#: The manifest's key for the archive's own duplicates policy (default: reject).
ON_DUPLICATE = "onDuplicate"


@dataclass(frozen=True)
class ArchiveOptions:
    """The options an archive's stored bytes were made with."""

    #: ``multipart``: frames stored as served (static hosting); ``raw``: bare.
    frames: FrameStorage = "multipart"
    #: The boundary of every stored multipart body.
    boundary: str = multipart.BOUNDARY
    #: Public binary values larger than this many bytes are bulk data.
    public_bulk_size: int = 131074
    #: Private binary values larger than this many bytes are bulk data.
    private_bulk_size: int = 64
    #: Attributes (8-hex tags, sorted) every QIDO-RS document holds beyond the
    #: standard's, at every level (``--qido-fields``).
    qido_fields: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The options as the manifest (and a study ZIP's comment) spells them.

        ``qidoFields`` only when there are some, so archives made before it
        existed keep matching.
        """
        document: dict[str, Any] = {
            "frames": self.frames,
            "boundary": self.boundary,
            "publicBulkSize": self.public_bulk_size,
            "privateBulkSize": self.private_bulk_size,
        }
        if self.qido_fields:
            document["qidoFields"] = list(self.qido_fields)
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ArchiveOptions:
        """Options from a manifest or a ZIP comment; a missing one is the default."""
        default = cls()
        frames = document.get("frames", default.frames)
        if frames not in ("multipart", "raw"):
            raise ArchiveError(f"unknown frame storage {frames!r}")
        return cls(
            frames=cast(FrameStorage, frames),
            boundary=str(document.get("boundary", default.boundary)),
            public_bulk_size=int(document.get("publicBulkSize", default.public_bulk_size)),
            private_bulk_size=int(document.get("privateBulkSize", default.private_bulk_size)),
            qido_fields=_tags(document.get("qidoFields", ())),
        )


def _tags(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(tag, str) and len(tag) == 8 and set(tag) <= set("0123456789ABCDEF")
        for tag in value
    ):
        raise ArchiveError(f"qidoFields {value!r} is not a list of 8-hex tags")
    return tuple(sorted(set(value)))


def read_manifest(store: ReadableStore) -> dict[str, Any] | None:
    """The manifest as stored; None when there is none."""
    if not store.exists(paths.MANIFEST):
        return None
    try:
        manifest: dict[str, Any] = orjson.loads(store.read(paths.MANIFEST))
    except orjson.JSONDecodeError as exc:
        raise ArchiveError(f"{store.url}: unreadable manifest: {exc}") from exc
    return manifest


def _checked(store: ReadableStore, manifest: dict[str, Any]) -> ArchiveOptions:
    if manifest.get("format") != FORMAT:
        raise NotAnArchiveError(f"{store.url}: not a dicomweb-archive folder")
    if manifest.get("formatVersion", 0) > FORMAT_VERSION:
        raise ArchiveError(
            f"{store.url}: archive format {manifest.get('formatVersion')} "
            f"is newer than this version understands ({FORMAT_VERSION})"
        )
    return ArchiveOptions.from_json(manifest)


def read_options(store: ReadableStore) -> ArchiveOptions:
    """The options of the archive in ``store``; refuses a store that is not one."""
    manifest = read_manifest(store)
    if manifest is None:
        raise NotAnArchiveError(f"{store.url}: not a dicomweb-archive folder (no manifest)")
    return _checked(store, manifest)


def duplicate_policy(store: ReadableStore) -> DuplicatePolicy:
    """The archive's duplicates policy: the manifest's ``onDuplicate``, else reject.

    It is a policy, not a shape of stored bytes: writers may each override it
    (``--on-duplicate``), and :func:`ensure` never compares it.
    """
    manifest = read_manifest(store) or {}
    policy = manifest.get(ON_DUPLICATE, "reject")
    if policy not in DUPLICATE_POLICIES:
        raise ArchiveError(f"{store.url}: unknown {ON_DUPLICATE} {policy!r} in the manifest")
    return cast(DuplicatePolicy, policy)


def ensure(store: Store, options: ArchiveOptions) -> ArchiveOptions:
    """Make ``store`` an archive with ``options``, or check it is one with them.

    Temporary files left by killed writers are dropped on the way.
    """
    with store.lock("archive"):
        manifest = read_manifest(store)
        wanted = options.to_json()
        if manifest is None:
            document = {"format": FORMAT, "formatVersion": FORMAT_VERSION, **wanted}
            _write(store, document)
        else:
            _checked(store, manifest)
            differing = {k: (manifest.get(k), v) for k, v in wanted.items() if manifest.get(k) != v}
            if differing:
                said = ", ".join(
                    f"{k}: archive has {old!r}, asked for {new!r}"
                    for k, (old, new) in sorted(differing.items())
                )
                if "qidoFields" in differing:
                    said += " (dwa index --qido-fields changes an archive's fields)"
                raise ArchiveOptionsMismatchError(f"{store.url}: {said}")
    store.remove_stale_temporaries()
    return options


def set_qido_fields(store: Store, fields: tuple[str, ...]) -> bool:
    """Record the archive's ``qidoFields`` (none: removed); False when unchanged.

    The studies' documents are then out of date until refreshed (``dwa index``).
    """
    with store.lock("archive"):
        manifest = read_manifest(store)
        if manifest is None:
            raise NotAnArchiveError(f"{store.url}: not a dicomweb-archive folder (no manifest)")
        options = _checked(store, manifest)
        wanted = tuple(sorted(set(fields)))
        if options.qido_fields == wanted:
            return False
        manifest.pop("qidoFields", None)
        if wanted:
            manifest["qidoFields"] = list(wanted)
        _write(store, manifest)
        return True


def _write(store: Store, manifest: dict[str, Any]) -> None:
    store.write(
        paths.MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    )


def open_or_create(store: Store) -> ArchiveOptions:
    """The options of the archive in ``store``; an empty or new folder becomes an
    archive with the default options, anything else that is not one is refused."""
    if read_manifest(store) is None and not store.list(""):
        return ensure(store, ArchiveOptions())
    return read_options(store)
