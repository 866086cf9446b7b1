from __future__ import annotations

from dicomweb_archive.cli.printable import printable


def test_printable_text_is_unchanged() -> None:
    assert printable("/scans/étude 1/ct.dcm: empty file") == "/scans/étude 1/ct.dcm: empty file"


def test_control_characters_and_backslashes_are_escaped() -> None:
    assert printable("a\nfailed: b\r\t\x1b[2K\x7f\u2028\\x") == (
        "a\\nfailed: b\\r\\t\\x1b[2K\\x7f\\u2028\\\\x"
    )
    assert "\n" not in printable("".join(map(chr, range(0x2000))))
