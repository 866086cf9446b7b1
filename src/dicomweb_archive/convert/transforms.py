"""What happens to each dataset before it is stored: custom transforms, private attributes,
de-identification, in that order (de-identification has the last word).

A custom transform is a function taking a :class:`pydicom.dataset.Dataset`
(with its ``file_meta``) and changing it in place, or returning the dataset to
store instead.  It is named ``module:function`` or by the name of an entry
point in the group ``dicomweb_archive.transforms``, which a package declares::

    [project.entry-points."dicomweb_archive.transforms"]
    fix-station = "mypackage.transforms:fix_station"

An exception in a transform fails that input (one line: the input, the
transform, the cause); the other inputs go on.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.errors import InvalidInputError, TransformError
from dicomweb_archive.p10.reader import ParsedInstance, instance_uids

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

ENTRY_POINT_GROUP = "dicomweb_archive.transforms"
MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020003

#: A custom transform: changes the dataset in place or returns the one to store.
Transform = Callable[["Dataset"], "Dataset | None"]


@functools.cache
def load_transform(spec: str) -> Transform:
    """The function ``spec`` names (``module:function`` or an entry point's name)."""
    if ":" in spec:
        module_name, _, attribute = spec.partition(":")
        try:
            target: object = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise InvalidInputError(f"transform {spec}: cannot be loaded: {exc}") from exc
    else:
        # Imported here: reading the installed packages' metadata costs every
        # command's start-up some 15 ms, and only a named transform needs it.
        from importlib.metadata import entry_points

        found = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == spec]
        if not found:
            names = sorted(e.name for e in entry_points(group=ENTRY_POINT_GROUP))
            raise InvalidInputError(
                f"transform {spec}: no entry point of that name in {ENTRY_POINT_GROUP} "
                f"(installed: {', '.join(names) or 'none'}); or name it module:function"
            )
        target = found[0].load()
    if not callable(target):
        raise InvalidInputError(f"transform {spec}: {type(target).__name__} is not callable")
    return cast(Transform, target)


def transform_instance(options: ConvertOptions, parsed: ParsedInstance) -> ParsedInstance:
    """``parsed`` with every transform of ``options`` applied (itself when there is none)."""
    if not (options.transforms or options.private or options.deidentify):
        return parsed
    from pydicom.dataset import Dataset

    ds = parsed.dataset
    for spec in options.transforms:
        transform = load_transform(spec)
        try:
            result = transform(ds)
            if result is not None and not isinstance(result, Dataset):
                raise TypeError(f"returned {type(result).__name__}, not a Dataset")
        except Exception as exc:  # whatever the hook raises fails this input only
            raise TransformError(
                f"{parsed.name}: transform {spec} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if result is not None:
            if getattr(result, "file_meta", None) is None:
                setattr(result, "file_meta", parsed.file_meta)  # noqa: B010 (typed narrower)
            ds = result
    if options.private is not None and options.deidentify is None:
        options.private.apply(ds)
    if options.deidentify is not None:
        options.deidentify.apply(ds, parsed.name)
    file_meta: Dataset | None = getattr(ds, "file_meta", None) or parsed.file_meta
    study, series, sop = instance_uids(ds, parsed.name)
    if file_meta is not None and MEDIA_STORAGE_SOP_INSTANCE_UID in file_meta:
        file_meta.MediaStorageSOPInstanceUID = sop
    return dataclasses.replace(
        parsed,
        # The transformed dataset replaces the file's: the fast path's reading goes.
        pydicom=(ds, file_meta if file_meta is not None and len(file_meta) else None),
        scanned=None,
        # The preamble is free for any use: de-identified, nothing of the source's stays.
        preamble=None if options.deidentify is not None else parsed.preamble,
        study_instance_uid=study,
        series_instance_uid=series,
        sop_instance_uid=sop,
    )
