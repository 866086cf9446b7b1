"""Numbers written by clients: ASCII digits only, one parser for all of them.

``int()`` and ``float()`` are lenient in ways no protocol means: ``+1``,
``1_0``, surrounding white space, Arabic-Indic or full-width digits, ``nan``
and ``inf``.  A frame number, a ``limit``, a byte position or a query value
that one of them accepts would name something the client did not write, so
every number read from a request goes through here instead.  Each function
raises :class:`ValueError` for anything else; callers say which input it was.
"""

from __future__ import annotations

import re
from typing import Final

#: Most digits an integer may have: far beyond any size or count we serve, and
#: small enough that converting it costs nothing.
MAX_DIGITS: Final = 18

_UNSIGNED: Final = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}")
_INTEGER: Final = re.compile(rf"[+-]?[0-9]{{1,{MAX_DIGITS}}}")
_DECIMAL: Final = re.compile(
    r"[+-]?([0-9]{1,32}(\.[0-9]{0,32})?|\.[0-9]{1,32})([eE][+-]?[0-9]{1,2})?"
)


def parse_unsigned(text: str) -> int:
    """A count, position or number: ``0``-``9`` only, no sign, no spaces."""
    if _UNSIGNED.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not a number of ASCII digits")
    return int(text)


def parse_integer(text: str) -> int:
    """An integer with an optional sign (the DICOM IS, SS, SL and SV values)."""
    if _INTEGER.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not an integer of ASCII digits")
    return int(text)


def parse_decimal(text: str) -> float:
    """A finite decimal number (the DICOM DS, FL and FD values): no ``nan``, no ``inf``."""
    if _DECIMAL.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not a decimal number of ASCII digits")
    return float(text)
