"""Where each SOP Instance UID is stored: one small file per instance in ``.dwa/instances/``.

A SOP Instance UID names one instance in the whole archive, whatever its study
and series; the duplicates policy needs to find it wherever it was stored
first.  ``.dwa/instances/{sop}`` holds ``{study}/{series}`` (on a local folder,
the entries of one series are hard links to one file, ``.dwa/series/{study}/{series}``,
rather than a new file each: see :meth:`Store.write_unpublished`).  The writer of an
instance registers it (under the instance's lock) before the instance commits,
and a deletion unregisters it after the instance is gone, so an entry may
outlive its instance (a writer killed in between) but never the other way
round: an entry counts only while the instance's ``metadata.gz`` is there.
Archives written before the registry existed get it from ``dwa index``
(:func:`rebuild`); storing an instance again registers it too.
"""

from __future__ import annotations

from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.base import ReadableStore, Store, instances_of
from dicomweb_archive.types import InstanceKey

REGISTRY = f"{paths.WORK_DIR}/instances"
#: The file the entries of each series share: ``{study}/{series}`` below.
SHARED = f"{paths.WORK_DIR}/series"


def _entry(sop: str) -> str:
    return f"{REGISTRY}/{sop}"


def registered(store: ReadableStore, sop: str) -> InstanceKey | None:
    """Where the registry says ``sop`` is, committed or not."""
    try:
        study, _, series = store.read(_entry(sop)).decode("ascii").partition("/")
    except (ResourceNotFoundError, UnicodeDecodeError):
        return None
    return InstanceKey(study, series, sop) if study and series else None


def register(store: Store, key: InstanceKey, *, absent: bool = False) -> None:
    """Note where ``key`` is stored (unchanged entries are not rewritten).

    ``absent``: the caller holds the instance's lock and found no entry; it
    is written in one step, no temporary file renamed (the lock's holders are
    its only readers; a killed write leaves an entry naming no committed
    instance, which counts as none), sharing its series' file where it can.
    """
    where = f"{key.study_instance_uid}/{key.series_instance_uid}"
    entry, content = _entry(key.sop_instance_uid), where.encode("ascii")
    if absent:
        store.write_unpublished(entry, content, shared=f"{SHARED}/{where}")
    else:
        store.write(entry, content)


def unregister(store: Store, key: InstanceKey) -> None:
    """Forget ``key``, unless its SOP Instance UID is registered elsewhere meanwhile."""
    if registered(store, key.sop_instance_uid) == key:
        store.remove(_entry(key.sop_instance_uid))


def forget_shared(store: Store, study: str, series: str | None = None) -> None:
    """Remove the file the entries of a removed series (or study) shared.

    Its entries keep their bytes (hard links); a writer linking to it meanwhile
    writes it again.
    """
    if series is None:
        store.remove_tree(f"{SHARED}/{study}")
    else:
        store.remove(f"{SHARED}/{study}/{series}")


def locate(archive: Archive, sop: str) -> InstanceKey | None:
    """The committed instance the archive holds under ``sop`` (folder or packed)."""
    return committed(archive, registered(archive.store, sop))


def committed(archive: Archive, key: InstanceKey | None) -> InstanceKey | None:
    """``key`` (a registry entry) when its instance is committed (folder or packed)."""
    if key is None or not archive.exists(paths.instance_metadata(*key)):
        return None
    return key


def register_study(archive: Archive, study: str) -> None:
    """Register the instances of a study that arrived whole (unpacked, packed into)."""
    for key in instances_of(archive, study):
        register(archive.store, key)


def rebuild(archive: Archive) -> int:
    """Register every committed instance of every study; returns their number."""
    count = 0
    for study in archive.study_uids():
        for key in instances_of(archive, study):
            register(archive.store, key)
            count += 1
    return count
