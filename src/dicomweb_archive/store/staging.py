"""Replacing one instance's files whole or not at all: :class:`InstanceUpdate`.

An instance is several files (``frames/{n}``, ``info.json.gz``, ``metadata.gz``)
that no store can replace in one step.  Every changed file is first written to
the staging folder ``.dwa/staging/`` (as ``{sop}~frames~3``, …), outside
the archive's published tree; nothing of the instance changes while its input may
still fail (a frame holding the multipart boundary, a broken fragment, a full
disk).  Once every file is staged, ``commit.json.gz`` (the instance's UIDs and
its frame count) is written there: the staging's commit point.  The files are
then applied in this order, each step idempotent:

1. content-addressed bulk data (written before ``commit.json.gz``, absent-only);
2. the HTJ2K alternate of other frames removed;
3. each staged ``frames/{n}`` moved into place, frames past the new count removed;
4. ``info.json.gz``, then ``metadata.gz`` (the instance's own commit point);
5. the staged files removed, the commit marker last.

A writer killed during 2-5 leaves ``commit.json.gz``: the next writer of the
instance (or :func:`recover_staged` at the start of a conversion) finishes the
same steps, so the instance ends up whole.  Staged files without
``commit.json.gz`` are an unfinished write and are dropped: by that sweep, by
a failed writer, and by the instance's next update before its
``commit.json.gz`` (a writer only looks for ``commit.json.gz``, not through
the staging folder, before it writes).  Only :meth:`Store.move`
is needed: atomic on a folder, a copy then a delete on an object store, where
the roll-forward covers a kill between the two.

A **new** instance (no file of it stored: the common case of a conversion) is
written alike but without ``commit.json.gz``, and its frames straight into
place (each checked before it is written), not staged: with nothing to
replace, files that no ``metadata.gz`` names do not exist for any reader.  A
failed input removes them, with the folders they made; a writer killed on the
way leaves them, and the next writer of the instance takes them as an instance
to update, whose files it finds already written (or part-written: then
replaced).  That saves a third of the file system operations of each new
instance, and moving each frame into a folder yet to be made.

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
from dicomweb_archive.store.base import Store, dumps_json, gunzip, gzip_bytes
from dicomweb_archive.store.session import writing_study
from dicomweb_archive.types import InstanceKey

STAGING_DIR = f"{paths.WORK_DIR}/staging"
_COMMIT = "commit.json.gz"
_SEP = "~"
_UNREADABLE = (OSError, EOFError, zlib.error, ValueError, KeyError, TypeError)
#: zlib's level for an instance's own documents (``info.json.gz``, ``metadata.gz``),
#: written once per instance on the conversion's busiest path: level 1 compresses
#: a CT slice's pair in half the time of level 6 alone, a third less within a
#: conversion (its caches cold from the frame), into 13% more bytes (1.8 KB against
#: 1.6 KB).  Documents made once per study keep the default level.
DOCUMENT_LEVEL = 1
#: Instances share this many locks (one lock file each on a folder store).
_LOCKS = 64


def instance_lock(key: InstanceKey) -> str:
    """The lock every writer of the instance holds (conversion, STOW-RS, transcoding)."""
    bucket = zlib.crc32(key.sop_instance_uid.encode("ascii", "replace")) % _LOCKS
    return f"instance-{bucket:02d}"


class InstanceUpdate:
    """The staged new files of one instance; the caller holds :func:`instance_lock`.

    Staged files lie flat in the staging folder, named ``{sop}~{path}`` with
    ``~`` for ``/`` (``{sop}~frames~3``): no folder is made or removed per
    instance, which on a local disk costs more than the files themselves.
    """

    def __init__(self, store: Store, key: InstanceKey) -> None:
        self.store = store
        self.key = key
        self.instance = paths.instance_dir(*key)
        self.prefix = f"{key.sop_instance_uid}{_SEP}"
        self.changed = False
        self.frames_changed = False
        #: Whether the commit marker is written: from then on the update is only
        #: ever finished, never dropped.
        self.committed = False
        #: Whether no file of the instance is stored (known at the first stage).
        self._new: bool | None = None
        #: The names staged here, in staging order.
        self._staged_here: list[str] = []
        #: Whether files of a new instance were written in place.
        self._placed = False

    def _staged(self) -> list[str]:
        """The names of this instance's staged files."""
        return [e.name for e in self.store.list(STAGING_DIR) if e.name.startswith(self.prefix)]

    def _path(self, name: str) -> str:
        return f"{STAGING_DIR}/{self.prefix}{name.replace('/', _SEP)}"

    def recover(self) -> bool:
        """Finish a committed update a killed writer left (see the module).

        Returns whether the instance's files changed.  An unfinished update's
        files stay until the sweep, or this instance's next update, drops them.
        """
        marker = self._path(_COMMIT)
        if not self.store.exists(marker):  # one look, not a listing of the staging
            return False
        plan = self.store.read_json_gz(marker)
        # The same SOP Instance UID in another study or series: finish that one.
        owner = InstanceKey(*plan["instance"])
        (self if owner == self.key else InstanceUpdate(self.store, owner))._apply(plan)
        return True

    def abandon(self) -> None:
        """After a failure: drop the staging if the commit point was not reached.

        Past it, some files may already be in place; the staging stays for the
        next writer of the instance, or :func:`recover_staged`, to finish.
        """
        if not self.committed:
            self.discard()
            if self._placed:  # a new instance's: nothing of it stays
                self.store.remove_tree(self.instance)
                _remove_empty_folders(self.store, self.instance)

    @property
    def new(self) -> bool:
        """Whether no file of the instance is stored; asked once, before the first write."""
        if self._new is None:
            self._new = not self.store.exists(self.instance)
        return self._new

    def discard(self) -> None:
        """Drop whatever was staged (a failed input changes nothing)."""
        for name in sorted(self._staged(), key=lambda name: name.endswith(_COMMIT)):
            self.store.remove(f"{STAGING_DIR}/{name}")

    def stage(self, name: str, *parts: bytes) -> bool:
        """Stage the instance's file ``name`` (``frames/3``) unless it holds these bytes."""
        if self._stored(name) == b"".join(parts):
            return False
        return self._put(name, parts)

    def stage_json(self, name: str, document: Any) -> bool:
        """Stage the instance's gzipped JSON document ``name`` (``metadata.gz``)
        unless the stored one holds the same JSON, whatever level compressed it."""
        data = dumps_json(document)
        stored = self._stored(name)
        if stored is not None and _gunzipped(stored) == data:
            return False
        return self._put(name, (gzip_bytes(data, DOCUMENT_LEVEL),))

    def _stored(self, name: str) -> bytes | None:
        """The instance's stored file ``name``; None for a new instance or a
        missing file (one read, no existence check first: a request less on an
        object store)."""
        if self.new:
            return None
        try:
            return self.store.read(f"{self.instance}/{name}")
        except ResourceNotFoundError:
            return None

    def _put(self, name: str, parts: tuple[bytes, ...]) -> bool:
        target = f"{self.instance}/{name}"
        self.changed = True
        if name.startswith(f"{paths.FRAMES}/"):
            self.frames_changed = True
            if self.new:  # into place: see the module
                self._placed = True
                self.store.write_unpublished(target, *parts)
                return True
        self.store.write_unpublished(self._path(name), *parts)
        self._staged_here.append(name)
        return True

    def stage_frames_count(self, count: int) -> None:
        """Note that frames past ``count`` go (a changed frame count changes the frames)."""
        if not self.new and any(number > count for number in self._stored_frames()):
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
        if not self.changed:
            return
        if self.new:
            self._apply_new()
            return
        plan = {"instance": list(self.key), "frames": frames, "dropHtj2k": drop_htj2k}
        for name in self._staged():  # an unfinished update's, which this one must not apply
            if name.removeprefix(self.prefix).replace(_SEP, "/") not in self._staged_here:
                self.store.remove(f"{STAGING_DIR}/{name}")
        self.store.write_json_gz(self._path(_COMMIT), plan)
        self.committed = True
        self._apply(plan)

    def _apply(self, plan: dict[str, Any]) -> None:
        store = self.store
        if plan["dropHtj2k"]:
            store.remove_tree(paths.htj2k_dir(*self.key))
        staged = self._staged()
        frames = f"{self.prefix}{paths.FRAMES}{_SEP}"
        for name in staged:
            if name.startswith(frames):
                target = f"{self.instance}/{paths.FRAMES}/{name.removeprefix(frames)}"
                store.move(f"{STAGING_DIR}/{name}", target)
        for number in self._stored_frames():
            if number > int(plan["frames"]):
                store.remove(paths.frame_path(*self.key, number))
        for name in (paths.INFO, paths.METADATA):
            if self.prefix + name in staged:
                store.move(self._path(name), f"{self.instance}/{name}")
        self.discard()  # the commit marker last

    def _apply_new(self) -> None:
        """Put a new instance's staged files in place, ``metadata.gz`` last (see the module).

        Its frames are in place already.  A failure on the way leaves in place
        only files no metadata names, which :meth:`abandon` removes.
        """
        for name in sorted(self._staged_here, key=_apply_rank):
            self._placed = True
            self.store.move(self._path(name), f"{self.instance}/{name}")
        self.committed = True

    def _stored_frames(self) -> Iterator[int]:
        for entry in self.store.list(f"{self.instance}/{paths.FRAMES}"):
            if entry.name.isdigit():
                yield int(entry.name)


def _gunzipped(stored: bytes) -> bytes | None:
    """A stored gzip file's bytes; None when part-written (a killed writer's: replaced)."""
    try:
        return gunzip(stored)
    except (OSError, EOFError, zlib.error):
        return None


def _remove_empty_folders(store: Store, instance: str) -> None:
    """Remove the folders above ``instance`` that hold nothing, up to its study's.

    A folder another writer filled meanwhile stays (and stops the climb).
    """
    folder, _, _ = instance.rpartition("/")
    while folder.count("/") >= paths.study_dir("0").count("/"):
        if not store.remove_empty_folder(folder):
            return
        folder, _, _ = folder.rpartition("/")


def _apply_rank(name: str) -> int:
    """Frames first, then ``info.json.gz``, ``metadata.gz`` last (a stable sort keeps the rest)."""
    return {paths.INFO: 1, paths.METADATA: 2}.get(name, 0)


def recover_staged(archive: Archive) -> list[InstanceKey]:
    """Finish or drop every interrupted update; returns the instances that changed.

    Each waits for its instance's lock, so a live writer's staging is left alone.
    """
    changed = []
    store = archive.store
    sops = sorted({entry.name.partition(_SEP)[0] for entry in store.list(STAGING_DIR)})
    for sop in sops:
        commit = f"{STAGING_DIR}/{sop}{_SEP}{_COMMIT}"
        try:
            key = InstanceKey(*store.read_json_gz(commit)["instance"])
        except (ResourceNotFoundError, *_UNREADABLE):
            # Unfinished (or finished meanwhile): dropped once its writer is gone.
            with store.lock(instance_lock(InstanceKey("", "", sop))):
                if not store.exists(commit):
                    for entry in store.list(STAGING_DIR):
                        if entry.name.startswith(f"{sop}{_SEP}"):
                            store.remove(f"{STAGING_DIR}/{entry.name}")
            continue
        with (
            writing_study(archive, key.study_instance_uid) as files,
            files.lock(instance_lock(key)),
        ):
            if InstanceUpdate(files, key).recover():
                changed.append(key)
    return changed
