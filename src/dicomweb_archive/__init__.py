"""Turn DICOM P10 files into a DICOMweb-native archive of plain files."""

from __future__ import annotations

from dicomweb_archive.convert.converter import ConversionResult, Converter
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.errors import DicomwebArchiveError
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.transcode.transcoder import TranscodeOptions, Transcoder, TranscodeResult
from dicomweb_archive.version import __version__

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
