"""Turn DICOM P10 files into a DICOMweb-native archive of plain files."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dicomweb_archive.version import __version__

if TYPE_CHECKING:
    from dicomweb_archive.convert.converter import ConversionResult, Converter
    from dicomweb_archive.convert.options import ConvertOptions
    from dicomweb_archive.errors import DicomwebArchiveError
    from dicomweb_archive.store.archive import Archive, open_archive
    from dicomweb_archive.transcode.transcoder import (
        TranscodeOptions,
        Transcoder,
        TranscodeResult,
    )

# Members load on first use (PEP 562): importing the package, as ``dwa --version``
# does, costs no pydicom, numpy or codec start-up.
_MODULES = {
    "Archive": "store.archive",
    "ConversionResult": "convert.converter",
    "ConvertOptions": "convert.options",
    "Converter": "convert.converter",
    "DicomwebArchiveError": "errors",
    "TranscodeOptions": "transcode.transcoder",
    "TranscodeResult": "transcode.transcoder",
    "Transcoder": "transcode.transcoder",
    "open_archive": "store.archive",
}

__all__ = [
    "Archive",
    "ConversionResult",
    "ConvertOptions",
    "Converter",
    "DicomwebArchiveError",
    "TranscodeOptions",
    "TranscodeResult",
    "Transcoder",
    "__version__",
    "open_archive",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
