"""Deleting a study, a series or an instance: whole, or finished by the next run.

A deletion is first written down in the journal (``.dwa/deleting/{study}``,
``{study}~{series}`` or ``{study}~{series}~{sop}``, holding whether the study was
packed): from then on it happens, whatever kills the process.  Then, under the
study's exclusive lock (a packed study unpacked first):

1. each instance: a committed staging of it finished first (so nothing lands
   after), its ``metadata.gz`` removed (its commit point: no refresh counts it
   any more), its folder removed, its registry entry dropped;
2. a deleted series' folder goes; a study left without instances goes whole;
   otherwise bulk data no remaining instance refers to is removed;
3. the study's derived documents, QIDO-RS index rows and row in the study list
   are refreshed (a study without instances leaves them all);
4. a study that was packed is packed again;
5. the journal entry is removed.

Every step can run again: :func:`finish_deletions` (run by every deletion, by
``dwa convert``, ``dwa update`` and the server as it starts) carries out what a
killed run left in the journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dicomweb_archive import uids
from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.store import registry
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import Store, folders, instances_of
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.packing import pack_study
from dicomweb_archive.store.session import writing_study
from dicomweb_archive.store.staging import InstanceUpdate, instance_lock
from dicomweb_archive.types import InstanceKey

DELETING = f"{paths.WORK_DIR}/deleting"
_SEP = "~"


@dataclass(frozen=True)
class Target:
    """What a deletion (or a correction) applies to: a study, one series, one instance."""

    study: str
    series: str | None = None
    sop: str | None = None

    def __post_init__(self) -> None:
        if self.sop is not None and self.series is None:
            raise ValueError("an instance is named with its series")

    @property
    def name(self) -> str:
        """The journal entry's name: the UIDs joined by ``~``."""
        return _SEP.join(uid for uid in (self.study, self.series, self.sop) if uid)

    @classmethod
    def from_name(cls, name: str) -> Target | None:
        parts = name.split(_SEP)
        if not 1 <= len(parts) <= 3 or not all(uids.is_valid_uid(p) for p in parts):
            return None
        return cls(*parts)

    def __str__(self) -> str:
        if self.sop:
            return f"instance {self.sop} (series {self.series}, study {self.study})"
        if self.series:
            return f"series {self.series} (study {self.study})"
        return f"study {self.study}"

    def resource(self) -> str:
        """The archive path whose presence says the target is stored."""
        if self.sop and self.series:
            return paths.instance_metadata(self.study, self.series, self.sop)
        if self.series:
            return paths.series_dir(self.study, self.series)
        return paths.study_dir(self.study)

    def exists(self, archive: Archive) -> bool:
        if self.series is None:
            return archive.has_study(self.study)
        return archive.exists(self.resource())


@dataclass
class Deletion:
    """What one deletion removed."""

    target: Target
    instances: list[InstanceKey] = field(default_factory=list)
    #: Bulk data files no remaining instance referred to.
    bulk_data: int = 0
    #: Whether the study is gone (its last instances deleted).
    study_removed: bool = False


def delete(archive: Archive, target: Target) -> Deletion:
    """Delete ``target`` from the archive; :class:`ResourceNotFoundError` when absent.

    The same deletion left unfinished by a killed run is finished, and answered.
    """
    for done in finish_deletions(archive):
        if done.target == target:
            return done
    if not target.exists(archive):
        raise ResourceNotFoundError(f"{target} is not in the archive")
    archive.store.write_json_gz(
        f"{DELETING}/{target.name}", {"packed": archive.is_packed(target.study)}
    )
    return _carry_out(archive, target)


def finish_deletions(archive: Archive) -> list[Deletion]:
    """Carry out every deletion the journal holds (left by a killed run)."""
    done = []
    for entry in archive.store.list(DELETING):
        target = Target.from_name(entry.name)
        if target is None:
            continue
        done.append(_carry_out(archive, target))
    return done


def _carry_out(archive: Archive, target: Target) -> Deletion:
    store = archive.store
    journal = f"{DELETING}/{target.name}"
    try:
        packed = bool(store.read_json_gz(journal)["packed"])
    except (ResourceNotFoundError, KeyError, TypeError):
        packed = False  # finished meanwhile, or written only in part: nothing to repack
    done = Deletion(target)
    with writing_study(archive, target.study, exclusive=True) as files:
        for key in _instance_folders(files, target):
            _remove_instance(files, key)
            done.instances.append(key)
        if target.series is not None and target.sop is None:
            files.remove_tree(paths.series_dir(target.study, target.series))
            registry.forget_shared(files, target.study, target.series)
        remaining = instances_of(files, target.study)
        if remaining:
            done.bulk_data = _remove_unreferenced_bulk(files, target.study, remaining)
        else:
            files.remove_tree(paths.study_dir(target.study))
            registry.forget_shared(files, target.study)
            done.study_removed = True
    Catalog(archive).refresh([target.study])
    if packed and not done.study_removed:
        pack_study(archive, target.study, remove=True)
    store.remove(journal)
    return done


def _instance_folders(store: Store, target: Target) -> Iterator[InstanceKey]:
    """Every instance folder of the target, committed or not."""
    if target.sop is not None and target.series is not None:
        yield InstanceKey(target.study, target.series, target.sop)
        return
    every = folders(store, f"{paths.study_dir(target.study)}/series")
    for series in every if target.series is None else [s for s in every if s == target.series]:
        for sop in folders(store, f"{paths.series_dir(target.study, series)}/instances"):
            yield InstanceKey(target.study, series, sop)


def _remove_instance(store: Store, key: InstanceKey) -> None:
    with store.lock(instance_lock(key)):
        # A committed update a killed writer left would otherwise land afterwards.
        InstanceUpdate(store, key).recover()
        store.remove(paths.instance_metadata(*key))
        store.remove_tree(paths.instance_dir(*key))
        registry.unregister(store, key)


def _remove_unreferenced_bulk(store: Store, study: str, remaining: list[InstanceKey]) -> int:
    """Remove the study's bulk data files no remaining instance refers to."""
    referenced: set[str] = set()
    for key in remaining:
        _bulk_uris(store.read_json_gz(paths.instance_metadata(*key)), referenced)
    folder = f"{paths.study_dir(study)}/bulkdata"
    removed = 0
    for prefix in folders(store, folder):
        for entry in store.list(f"{folder}/{prefix}"):
            uri = f"bulkdata/{prefix}/{entry.name}"
            if not entry.is_folder and uri not in referenced:
                removed += store.remove(f"{paths.study_dir(study)}/{uri}")
    return removed


def _bulk_uris(document: Any, found: set[str]) -> None:
    """Every BulkDataURI in a DICOM JSON document, nested sequences included."""
    if isinstance(document, dict):
        uri = document.get("BulkDataURI")
        if isinstance(uri, str):
            found.add(uri)
        for value in document.values():
            if isinstance(value, dict | list):
                _bulk_uris(value, found)
    elif isinstance(document, list):
        for item in document:
            _bulk_uris(item, found)
