"""Media types and their negotiation (PS3.18 8.7, RFC 9110 12.5.1).

Parsing follows the HTTP grammar: names are case-insensitive, quoted and unquoted
parameter values are equal, white space around ``;`` and ``=`` is ignored, and a
``transfer-syntax`` inside a quoted ``type`` value is *not* a parameter of the
range (client-contract §11.1).  Invalid ranges are ignored, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"
MULTIPART_RELATED = "multipart/related"
ZIP = "application/zip"

#: Names clients use for the same type.
ALIASES = {
    "image/jhc": "image/jphc",
    "image/x-jls": "image/jls",
    "image/x-dicom-rle": "image/dicom-rle",
}


@dataclass(frozen=True)
class MediaRange:
    """One element of an Accept list: ``type/subtype;param=value;q=0.5``."""

    type: str
    subtype: str
    params: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    q: float = 1.0

    @property
    def media_type(self) -> str:
        return f"{self.type}/{self.subtype}"

    @property
    def is_wildcard(self) -> bool:
        return self.type == "*" or self.subtype == "*"

    def matches(self, media_type: str) -> bool:
        kind, _, sub = media_type.partition("/")
        return (self.type in ("*", kind)) and (self.subtype in ("*", sub))

    @property
    def part_type(self) -> str | None:
        """The ``type`` parameter of a multipart range, unaliased."""
        value = self.params.get("type")
        if value is None:
            return None
        return ALIASES.get(value.strip().lower(), value.strip().lower())

    @property
    def transfer_syntax(self) -> str | None:
        """The ``transfer-syntax`` parameter (``transferSyntax``, as some clients spell it)."""
        value = self.params.get("transfer-syntax") or self.params.get("transfersyntax")
        return value.strip() if value else None


def _split(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside double quotes."""
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            quoted = not quoted
            current.append(char)
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return value


def parse_media_range(text: str) -> MediaRange | None:
    """Parse one media range; ``None`` when it is not one."""
    pieces = _split(text, ";")
    kind, slash, sub = pieces[0].strip().lower().partition("/")
    if not slash or not kind or not sub or " " in kind or " " in sub:
        return None
    if kind == "*" and sub != "*":
        return None
    params: dict[str, str] = {}
    q = 1.0
    for piece in pieces[1:]:
        name, equals, value = piece.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if not equals:
            return None
        value = _unquote(value)
        if name == "q":
            try:
                q = float(value)
            except ValueError:
                return None
            if not 0.0 <= q <= 1.0:
                return None
        else:
            params[name] = value
    media_type = ALIASES.get(f"{kind}/{sub}", f"{kind}/{sub}")
    kind, _, sub = media_type.partition("/")
    return MediaRange(kind, sub, params, q)


def parse_accept(values: Iterable[str]) -> list[MediaRange]:
    """Media ranges of Accept header values, best first (stable for ties)."""
    ranges = []
    for value in values:
        if value.strip().lower() == "undefined":  # sent by some streaming clients
            continue
        for item in _split(value, ","):
            if item.strip():
                parsed = parse_media_range(item)
                if parsed is not None and parsed.q > 0:
                    ranges.append(parsed)
    return sorted(ranges, key=lambda r: -r.q)


def parse_accept_parameter(values: Iterable[str]) -> list[MediaRange]:
    """Media types of ``accept`` query parameters; wildcards are not allowed there."""
    return [r for r in parse_accept(values) if not r.is_wildcard]
