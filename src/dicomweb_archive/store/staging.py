"""Replacing one instance's files whole or not at all: :class:`InstanceUpdate`.

An instance is several files (``frames/{n}``, ``info.json.gz``, ``metadata.gz``)
that no store can replace in one step.  Every changed file is first written to
the instance's staging folder, ``.dwa/staging/{sop}/``, outside
the archive's published tree; nothing of the instance changes while its input may
still fail (a frame holding the multipart boundary, a broken fragment, a full
disk).  Once every file is staged, ``commit.json.gz`` (the instance's UIDs and
its frame count) is written there: the staging's commit point.  The files are
then applied in this order, each step idempotent:

1. content-addressed bulk data (written before ``commit.json.gz``, absent-only);
2. the HTJ2K alternate of other frames removed;
3. each staged ``frames/{n}`` moved into place, frames past the new count removed;
4. ``info.json.gz``, then ``metadata.gz`` (the instance's own commit point);
5. the staging folder removed.

A writer killed during 2-5 leaves ``commit.json.gz``: the next writer of the
instance (or :func:`recover_staged` at the start of a conversion) finishes the
same steps, so the instance ends up whole.  A staging folder without
``commit.json.gz`` is an unfinished write and is dropped.  Only :meth:`Store.move`
is needed: atomic on a folder, a copy then a delete on an object store, where
the roll-forward covers a kill between the two.

Writers hold the study's write session and :func:`instance_lock`, so one
instance has one writer at a time, across processes.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import Store, folders
from dicomweb_archive.store.session import writing_study
from dicomweb_archive.types import InstanceKey

STAGING_DIR = f"{paths.WORK_DIR}/staging"
_COMMIT = "commit.json.gz"
_UNREADABLE = (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError)
#: Instances share this many locks (one lock file each on a folder store).
_LOCKS = 64


def instance_lock(key: InstanceKey) -> str:
    """The lock every writer of the instance holds (conversion, STOW-RS, transcoding)."""
    return _sop_lock(key.sop_instance_uid)


def _sop_lock(sop: str) -> str:
    return f"instance-{zlib.crc32(sop.encode('ascii', 'replace')) % _LOCKS:02d}"


class InstanceUpdate:
    """The staged new files of one instance; the caller holds :func:`instance_lock`."""

    def __init__(self, store: Store, key: InstanceKey) -> None:
        self.store = store
        self.key = key
        self.instance = paths.instance_dir(*key)
        self.staging = f"{STAGING_DIR}/{key.sop_instance_uid}"
        self.changed = False
        self.frames_changed = False

    def recover(self) -> bool:
        """Finish a committed update a killed writer left; drop an unfinished one.

        Returns whether the instance's files changed.
        """
        if not self.store.exists(self.staging):
            return False
        if not self.store.exists(f"{self.staging}/{_COMMIT}"):
            self.discard()
            return False
        plan = self.store.read_json_gz(f"{self.staging}/{_COMMIT}")
        # The same SOP Instance UID in another study or series: finish that one.
        owner = InstanceKey(*plan["instance"])
        (self if owner == self.key else InstanceUpdate(self.store, owner))._apply(plan)
        return True

    def discard(self) -> None:
        """Drop whatever was staged (a failed input changes nothing)."""
        self.store.remove_tree(self.staging)

    def stage(self, name: str, *parts: bytes) -> bool:
        """Stage the instance's file ``name`` (``frames/3``) unless it holds these bytes."""
        target = f"{self.instance}/{name}"
        body = b"".join(parts)
        if self.store.exists(target) and self.store.read(target) == body:
            return False
        self.store.write(f"{self.staging}/{name}", body)
        self.changed = True
        if name.startswith(f"{paths.FRAMES}/"):
            self.frames_changed = True
        return True

    def stage_frames_count(self, count: int) -> None:
        """Note that frames past ``count`` go (a changed frame count changes the frames)."""
        if any(number > count for number in self._stored_frames()):
            self.changed = self.frames_changed = True

    def commit(
        self,
        *,
        frames: int,
        bulk: Iterable[tuple[str, tuple[bytes, ...]]],
        drop_htj2k: bool,
    ) -> None:
        """Write the bulk data, mark the staging complete and apply it (see the module)."""
        for path, parts in bulk:
            if self.store.write_if_absent(path, *parts):
                self.changed = True
        if drop_htj2k and self.store.exists(paths.htj2k_dir(*self.key)):
            self.changed = True
        if not self.store.exists(self.staging) and not self.changed:
            return
        plan = {"instance": list(self.key), "frames": frames, "dropHtj2k": drop_htj2k}
        self.store.write_json_gz(f"{self.staging}/{_COMMIT}", plan)
        self._apply(plan)

    def _apply(self, plan: dict[str, Any]) -> None:
        store = self.store
        if plan["dropHtj2k"]:
            store.remove_tree(paths.htj2k_dir(*self.key))
        staged_frames = f"{self.staging}/{paths.FRAMES}"
        frames = f"{self.instance}/{paths.FRAMES}"
        for entry in store.list(staged_frames):
            store.move(f"{staged_frames}/{entry.name}", f"{frames}/{entry.name}")
        for number in self._stored_frames():
            if number > int(plan["frames"]):
                store.remove(paths.frame_path(*self.key, number))
        for name in (paths.INFO, paths.METADATA):
            if store.exists(f"{self.staging}/{name}"):
                store.move(f"{self.staging}/{name}", f"{self.instance}/{name}")
        store.remove_tree(self.staging)

    def _stored_frames(self) -> Iterator[int]:
        for entry in self.store.list(f"{self.instance}/{paths.FRAMES}"):
            if entry.name.isdigit():
                yield int(entry.name)


def recover_staged(archive: Archive) -> list[InstanceKey]:
    """Finish or drop every interrupted update; returns the instances that changed.

    Each waits for its instance's lock, so a live writer's staging is left alone.
    """
    changed = []
    store = archive.store
    for sop in folders(store, STAGING_DIR):
        try:
            key = InstanceKey(*store.read_json_gz(f"{STAGING_DIR}/{sop}/{_COMMIT}")["instance"])
        except (ResourceNotFoundError, *_UNREADABLE):
            with store.lock(_sop_lock(sop)):  # unfinished; or finished meanwhile
                if not store.exists(f"{STAGING_DIR}/{sop}/{_COMMIT}"):
                    store.remove_tree(f"{STAGING_DIR}/{sop}")
            continue
        with (
            writing_study(archive, key.study_instance_uid) as files,
            files.lock(instance_lock(key)),
        ):
            if InstanceUpdate(files, key).recover():
                changed.append(key)
    return changed
