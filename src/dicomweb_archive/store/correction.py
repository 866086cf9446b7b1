"""Correcting patient, study and series attributes in place: metadata only.

An instance's attributes live in its ``metadata.gz``; its frames and bulk data
are separate files, so a correction rewrites only the instance's metadata and
its ``info.json.gz`` (which records each change: when, by whom, every
attribute's old and new value), then the study's derived documents.  Frames
and bulk data are not touched (not a byte, not a modification time), and P10
files exported afterwards carry the new values.

Like a deletion, a correction is written down first (``.dwa/correcting/{target}``,
with its values, author and time), then carried out, each instance through
the staging of :class:`~dicomweb_archive.store.staging.InstanceUpdate` (whole
or not at all); a packed study is unpacked first and packed again at the end.
Applying a correction twice changes nothing, so :func:`finish_corrections`
(run by every correction and deletion, ``dwa convert`` and ``dwa serve`` at
start) finishes what a killed run left, with the same record.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.model.corrections import Correction, apply_corrections
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import Store, instances_of
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.packing import pack_study
from dicomweb_archive.store.removal import Target, finish_deletions
from dicomweb_archive.store.session import writing_study
from dicomweb_archive.store.staging import InstanceUpdate, instance_lock
from dicomweb_archive.types import InstanceKey

CORRECTING = f"{paths.WORK_DIR}/correcting"
#: The key of the change records in an instance's ``info.json.gz``.
CHANGES = "changes"


@dataclass
class Corrected:
    """What one correction changed."""

    target: Target
    #: The instances whose metadata changed.
    instances: list[InstanceKey] = field(default_factory=list)
    #: Instances that held the values already.
    unchanged: int = 0


def correct(
    archive: Archive, target: Target, corrections: list[Correction], *, by: str
) -> Corrected:
    """Set ``corrections`` on every instance of ``target``; recorded as made ``by``."""
    finish_deletions(archive)
    finish_corrections(archive)
    if not target.exists(archive):
        raise ResourceNotFoundError(f"{target} is not in the archive")
    entry = {
        "corrections": [c.to_json() for c in corrections],
        "by": by,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "packed": archive.is_packed(target.study),
    }
    archive.store.write_json_gz(f"{CORRECTING}/{target.name}", entry)
    return _carry_out(archive, target, entry)


def finish_corrections(archive: Archive) -> list[Corrected]:
    """Carry out every correction the journal holds (left by a killed run)."""
    done = []
    for item in archive.store.list(CORRECTING):
        target = Target.from_name(item.name)
        if target is None:
            continue
        try:
            entry = archive.store.read_json_gz(f"{CORRECTING}/{item.name}")
        except ResourceNotFoundError:
            continue  # finished meanwhile
        done.append(_carry_out(archive, target, entry))
    return done


def _carry_out(archive: Archive, target: Target, entry: dict[str, Any]) -> Corrected:
    corrections = [Correction.from_json(c) for c in entry["corrections"]]
    record = {"date": entry["date"], "by": entry["by"]}
    done = Corrected(target)
    with writing_study(archive, target.study) as files:
        keys = instances_of(files, target.study, target.series)
        for key in keys if target.sop is None else [k for k in keys if k[2] == target.sop]:
            if _correct_instance(files, key, corrections, record):
                done.instances.append(key)
            else:
                done.unchanged += 1
    Catalog(archive).refresh([target.study])
    if entry.get("packed"):
        pack_study(archive, target.study, remove=True)
    archive.store.remove(f"{CORRECTING}/{target.name}")
    return done


def _correct_instance(
    files: Store, key: InstanceKey, corrections: list[Correction], record: dict[str, str]
) -> bool:
    """Rewrite one instance's metadata and info; False when it held the values."""
    with files.lock(instance_lock(key)):
        update = InstanceUpdate(files, key)
        update.recover()
        [dataset] = files.read_json_gz(paths.instance_metadata(*key))
        changes = apply_corrections(dataset, corrections)
        if not changes:
            return False
        info = files.read_json_gz(paths.instance_info(*key))
        info.setdefault(CHANGES, []).append({**record, "attributes": changes})
        try:
            update.stage_json(paths.INFO, info)
            update.stage_json(paths.METADATA, [dataset])
            update.commit(frames=_frame_count(files, key), bulk=[], drop_htj2k=False)
        except BaseException:
            update.abandon()
            raise
        return True


def _frame_count(files: Store, key: InstanceKey) -> int:
    """The instance's stored frames: the staging's plan keeps them all."""
    folder = f"{paths.instance_dir(*key)}/{paths.FRAMES}"
    return max((int(e.name) for e in files.list(folder) if e.name.isdigit()), default=0)
