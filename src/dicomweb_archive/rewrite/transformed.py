"""P10 files transformed on the way out (``dwa export --deidentify``, ``?deidentify=`` retrieves).

A regenerated file is stored in a scratch archive in memory through
:func:`~dicomweb_archive.convert.instance.store_instance` with the conversion
options' transforms, then regenerated from there: the path, and so the values
and pseudonyms, of ``dwa convert --deidentify`` with the same key.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable

from dicomweb_archive.convert.instance import store_instance
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.export.p10 import export_instance
from dicomweb_archive.model import paths
from dicomweb_archive.p10.reader import read_instance
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.manifest import ensure
from dicomweb_archive.store.memory import MemoryStore
from dicomweb_archive.types import JSONDataset


def transformed_p10(data: bytes, name: str, options: ConvertOptions) -> tuple[bytes, JSONDataset]:
    """``data`` (a P10 file) with ``options``' transforms applied, and its new metadata."""
    with open_archive(MemoryStore()) as scratch:
        ensure(scratch.store, options.archive_options())
        outcome = store_instance(scratch, options, read_instance(io.BytesIO(data), name))
        key = outcome.key
        assert key is not None  # stored: its UIDs were read
        [meta] = scratch.read_json_gz(paths.instance_metadata(*key))
        return export_instance(scratch, *key), meta


def rewriter(options: ConvertOptions) -> Callable[[bytes, str], tuple[bytes, JSONDataset]]:
    """:func:`transformed_p10` with ``options``: the ``rewrite`` of an export."""
    return functools.partial(transformed_p10, options=options)
