from __future__ import annotations

import io

from rich.console import Console

from dicomweb_archive.cli.progress import ProgressBar


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=100, highlight=False), out


def test_failures_are_printed_above_the_bar() -> None:
    console, out = _console(terminal=True)
    with ProgressBar("converting", console, enabled=True) as bar:
        bar.set_total(3)
        bar.advance()
        bar.advance("a.dcm: not a DICOM file")
        bar.advance()
    text = out.getvalue()
    assert "failed: a.dcm: not a DICOM file" in text
    assert "converting" in text and "3/3" in text


def test_disabled_bar_prints_only_failures() -> None:
    console, out = _console(terminal=False)
    with ProgressBar("transcoding", console, enabled=False) as bar:
        bar.set_total(2)
        bar.advance("1.2/3.4/5.6: frame 1 cannot be decoded")
        bar.advance()
    assert out.getvalue() == "failed: 1.2/3.4/5.6: frame 1 cannot be decoded\n"
