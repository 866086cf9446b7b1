"""The consoles commands print their messages on: text exactly as given.

Messages carry names from outside (file names, archive locations, reasons): a
``[bold]`` or ``:smile:`` in a file name prints as it is, never as markup or an
emoji.  Without emoji codes, the first message also skips loading rich's emoji
table (about 20 ms at the end of every command).
"""

from __future__ import annotations

from rich.console import Console


def plain_console(*, stderr: bool = False) -> Console:
    """A console on standard output (or error) that prints text as given."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False)
