"""A copy of an archive through the conversion's transforms (``dwa deidentify``).

The instances of the source archive are inputs like files: each is regenerated
as its P10 file when a worker opens it.

``dwa deidentify ARCHIVE -o OTHER`` stores every instance of ARCHIVE into OTHER
through :func:`~dicomweb_archive.convert.instance.store_instance`, the path of
any input, so the copy gets the conversion's transforms (de-identification,
private attributes, custom transforms) and nothing of the source is copied
around them.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from dicomweb_archive.convert.converter import ConversionResult, Converter, OnOutcome, OnTotal
from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.export.p10 import export_instance
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.types import InstanceKey


@dataclass(frozen=True)
class ArchivedInstance:
    """One instance of the archive at ``location``; picklable for worker processes."""

    location: str
    key: InstanceKey
    #: Named by the user, not found in a folder: a failure is a failure.
    contained: bool = False

    @property
    def name(self) -> str:
        return f"{self.location}: instance {self.key.sop_instance_uid}"

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """The instance's P10 file, regenerated (semantically equal to its source)."""
        with open_archive(self.location) as archive:
            yield io.BytesIO(export_instance(archive, *self.key))


def archived_instances(location: str, studies: Iterable[str] = ()) -> list[ArchivedInstance]:
    """Every instance of the archive at ``location``, or of ``studies`` only."""
    wanted = set(studies)
    with open_archive(location) as archive:
        missing = [s for s in wanted if not archive.has_study(s)]
        if missing:
            raise ResourceNotFoundError(f"study {missing[0]} is not in {location}")
        keys = list(archive.instance_keys(sorted(wanted) if wanted else None))
    return [ArchivedInstance(location, key) for key in keys]


def copy_archive(
    source: str | os.PathLike[str],
    converter: Converter,
    studies: Iterable[str] = (),
    *,
    on_total: OnTotal | None = None,
    on_outcome: OnOutcome | None = None,
) -> ConversionResult:
    """Store every instance of the archive at ``source`` (or of ``studies``) with ``converter``.

    Each is regenerated as its P10 file and stored like any input, through the
    converter's transforms: ``dwa deidentify`` is a copy that de-identifies.
    """
    found = archived_instances(os.fspath(source), studies)
    return converter.run(lambda spool: found, on_total, on_outcome)
