"""What ``dwa listen`` is told: its AE title and address, peers, allow-list and limits.

Peers (the Move Destinations C-MOVE may send to) and the calling AE titles
allowed to associate are kept in a TOML file (``--peers FILE``)::

    # Calling AE titles that may associate; absent or empty: any.
    allow = ["CT_SCANNER", "WORKSTATION"]

    # Move Destinations, by AE title: where C-MOVE opens its association.
    [peers.WORKSTATION]
    host = "10.0.0.5"
    port = 104

A peer's AE title is only trusted as a Move Destination: C-MOVE never sends to
an address the request names, only to one this file gives for its title.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dicomweb_archive.errors import InvalidInputError

#: Most associations served at once; one more is rejected (local limit exceeded).
MAX_ASSOCIATIONS = 10
#: Seconds an association may wait for the peer's next message (ACSE and DIMSE).
TIMEOUT = 30.0
#: Seconds an association may stay idle on the network before it is aborted.
NETWORK_TIMEOUT = 60.0
#: Largest PDU we receive: the peer cuts its data sets into pieces of this size.
#: Larger than most defaults (16 KiB): fewer pieces, less work per instance.
MAX_PDU = 131_072
#: Largest C-STORE data set received (None: no limit; PS3.7 sets none).
MAX_DATASET_SIZE: int | None = None


@dataclass(frozen=True)
class Peer:
    """A known AE: where an association to it is opened."""

    ae_title: str
    host: str
    port: int


@dataclass(frozen=True)
class ListenConfig:
    """Everything one ``dwa listen`` needs besides its archive."""

    ae_title: str = "DWA"
    host: str = "127.0.0.1"
    port: int = 11112
    #: Move Destinations by AE title.
    peers: Mapping[str, Peer] = field(default_factory=dict)
    #: Calling AE titles allowed to associate; empty: any.
    allowed_calling: frozenset[str] = frozenset()
    max_associations: int = MAX_ASSOCIATIONS
    timeout: float = TIMEOUT
    network_timeout: float = NETWORK_TIMEOUT
    max_pdu: int = MAX_PDU
    #: Larger C-STORE data sets are refused (0xA700) once received.
    max_dataset_size: int | None = MAX_DATASET_SIZE


def check_ae_title(title: str, where: str = "") -> str:
    """``title`` without its padding, if it can be one (PS3.5 6.2, VR AE);
    ``where`` prefixes the error's message."""
    stripped = title.strip()
    if not 1 <= len(stripped) <= 16 or any(c < " " or c > "~" or c == "\\" for c in stripped):
        raise InvalidInputError(
            f"{where}{title!r} is not an AE title: 1 to 16 printable ASCII characters, no backslash"
        )
    return stripped


@dataclass(frozen=True)
class PeersFile:
    """The contents of a peers file."""

    peers: dict[str, Peer]
    allow: frozenset[str]


def read_peers(path: str | Path) -> PeersFile:
    """The peers and allow-list in the TOML file at ``path`` (see the module)."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInputError(f"{path}: cannot read the peers file: {exc}") from exc
    unknown = sorted(set(document) - {"allow", "peers"})
    if unknown:
        raise InvalidInputError(f"{path}: unknown keys {unknown}; expected allow and [peers.AE]")
    allow = document.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
        raise InvalidInputError(f"{path}: allow must be a list of AE titles")
    peers = document.get("peers", {})
    if not isinstance(peers, dict):
        raise InvalidInputError(f"{path}: peers must be tables [peers.AE] with host and port")
    found = [_peer(path, title, entry) for title, entry in peers.items()]
    return PeersFile(
        {peer.ae_title: peer for peer in found},
        frozenset(check_ae_title(title, f"{path}: allow: ") for title in allow),
    )


def _peer(path: str | Path, title: str, entry: Any) -> Peer:
    where = f"{path}: [peers.{title}]"
    ae_title = check_ae_title(title, f"{where}: ")
    if not isinstance(entry, dict) or set(entry) != {"host", "port"}:
        raise InvalidInputError(f"{where} needs exactly host and port")
    host, port = entry["host"], entry["port"]
    if not isinstance(host, str) or not host:
        raise InvalidInputError(f"{where}: host must be a name or an address")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise InvalidInputError(f"{where}: port must be a number from 1 to 65535")
    return Peer(ae_title, host, port)


def allow_list(*sources: Iterable[str]) -> frozenset[str]:
    """The calling AE titles of every source, checked and merged."""
    return frozenset(check_ae_title(title) for source in sources for title in source)
