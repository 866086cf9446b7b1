"""Options of a conversion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dicomweb_archive.pool import worker_count
from dicomweb_archive.store.manifest import ArchiveOptions, DuplicatePolicy, FrameStorage

if TYPE_CHECKING:  # imported where they are used: conversion without them stays light
    from dicomweb_archive.deidentify.deidentifier import Deidentifier
    from dicomweb_archive.deidentify.private import PrivatePolicy

_STORED = ArchiveOptions()


@dataclass(frozen=True)
class ConvertOptions:
    #: Public binary values larger than this many bytes become bulk data.
    public_bulk_size: int = _STORED.public_bulk_size
    #: Private binary values larger than this many bytes become bulk data.
    private_bulk_size: int = _STORED.private_bulk_size
    #: ``multipart``: frames stored as served (static hosting); ``raw``: bare.
    frames: FrameStorage = _STORED.frames
    #: Worker processes; ``None`` uses every core.
    workers: int | None = None
    #: Attributes (8-hex tags) added to every QIDO-RS document; () keeps the archive's.
    qido_fields: tuple[str, ...] = ()
    #: Custom transforms (``module:function`` or entry point names), applied first.
    transforms: tuple[str, ...] = ()
    #: Private attributes kept (``--strip-private``, ``--keep-private``); None keeps all.
    private: PrivatePolicy | None = None
    #: De-identification (PS3.15 Annex E) of every instance, applied last.
    deidentify: Deidentifier | None = None
    #: A SOP Instance UID stored again with other content, or elsewhere:
    #: ``reject`` or ``overwrite``; ``None`` follows the archive's manifest
    #: (``onDuplicate``, default ``reject``).
    on_duplicate: DuplicatePolicy | None = None

    def worker_count(self) -> int:
        return worker_count(self.workers)

    def archive_options(self) -> ArchiveOptions:
        """The options that shape stored bytes, as the archive's manifest keeps them."""
        return ArchiveOptions(
            frames=self.frames,
            public_bulk_size=self.public_bulk_size,
            private_bulk_size=self.private_bulk_size,
            qido_fields=self.qido_fields,
        )

    @classmethod
    def for_archive(
        cls,
        options: ArchiveOptions,
        *,
        workers: int | None = None,
        on_duplicate: DuplicatePolicy | None = None,
    ) -> ConvertOptions:
        """Conversion options that write what an archive of ``options`` holds."""
        return cls(
            public_bulk_size=options.public_bulk_size,
            private_bulk_size=options.private_bulk_size,
            frames=options.frames,
            workers=workers,
            qido_fields=options.qido_fields,
            on_duplicate=on_duplicate,
        )
