from __future__ import annotations

import dicomweb_archive


def test_public_api() -> None:
    assert sorted(dicomweb_archive.__all__) == [
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
