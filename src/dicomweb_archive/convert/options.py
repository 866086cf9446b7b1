"""Options of a conversion."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from dicomweb_archive.model import multipart

FrameStorage = Literal["multipart", "raw"]


@dataclass(frozen=True)
class ConvertOptions:
    #: Public binary values larger than this many bytes become bulk data.
    public_bulk_size: int = 131074
    #: Private binary values larger than this many bytes become bulk data.
    private_bulk_size: int = 64
    #: ``multipart``: frames stored as served (static hosting); ``raw``: bare.
    frames: FrameStorage = "multipart"
    #: Worker processes; ``None`` uses every core.
    workers: int | None = None

    def worker_count(self) -> int:
        return max(1, self.workers or os.cpu_count() or 1)

    def manifest(self) -> dict[str, Any]:
        """The options that shape stored bytes, as kept in the manifest."""
        return {
            "frames": self.frames,
            "boundary": multipart.BOUNDARY,
            "publicBulkSize": self.public_bulk_size,
            "privateBulkSize": self.private_bulk_size,
        }
