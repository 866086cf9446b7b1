"""The peers file, AE titles and the allow-list."""

from __future__ import annotations

from pathlib import Path

import pytest

from dicomweb_archive.dimse.config import Peer, allow_list, check_ae_title, read_peers
from dicomweb_archive.errors import InvalidInputError


def test_a_peers_file(tmp_path: Path) -> None:
    path = tmp_path / "peers.toml"
    path.write_text(
        'allow = ["CT1", "VIEWER"]\n'
        '[peers.VIEWER]\nhost = "10.0.0.5"\nport = 104\n'
        '[peers.PACS]\nhost = "pacs.example"\nport = 11112\n'
    )
    read = read_peers(path)
    assert read.peers == {
        "VIEWER": Peer("VIEWER", "10.0.0.5", 104),
        "PACS": Peer("PACS", "pacs.example", 11112),
    }
    assert read.allow == {"CT1", "VIEWER"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[peers.A]\nhost = 'h'\n", "needs exactly host and port"),
        ("[peers.A]\nhost = 'h'\nport = 70000\n", "port must be a number from 1 to 65535"),
        ("[peers.A]\nhost = ''\nport = 1\n", "host must be a name or an address"),
        ("[peers.TOO_LONG_FOR_AN_AE_TITLE]\nhost = 'h'\nport = 1\n", "is not an AE title"),
        ("allow = 'A'\n", "allow must be a list of AE titles"),
        ("destinations = 1\n", "unknown keys ['destinations']"),
        ("[peers\n", "cannot read the peers file"),
    ],
)
def test_a_bad_peers_file_is_named(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "peers.toml"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=r"peers\.toml") as raised:
        read_peers(path)
    assert says in str(raised.value)


def test_ae_titles() -> None:
    assert check_ae_title(" DWA ") == "DWA"
    for bad in ("", "A" * 17, "A\\B", "tab\there"):
        with pytest.raises(InvalidInputError):
            check_ae_title(bad)
    assert allow_list(["A"], {"B", " A"}) == {"A", "B"}
