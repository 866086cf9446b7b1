"""Keyed pseudonyms: the same key gives the same values anywhere, another key others."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dicomweb_archive import uids
from dicomweb_archive.deidentify.keys import MAX_SHIFT_DAYS, PseudonymKey
from dicomweb_archive.errors import InvalidInputError

KEY = PseudonymKey(b"0123456789abcdef0123456789abcdef")
OTHER = PseudonymKey(b"fedcba9876543210fedcba9876543210")


def test_uids_are_uuid_derived_and_stable() -> None:
    uid = KEY.uid("1.2.3.4")
    assert uid.startswith("2.25.") and uids.is_valid_uid(uid) and len(uid) <= 64
    number = int(uid[5:])
    assert number >> 76 & 0xF == 8 and number >> 62 & 0x3 == 2  # UUID version 8, RFC variant
    # Fixed: the same key maps the same UID on every machine, in every release.
    assert uid == PseudonymKey(KEY.secret).uid("1.2.3.4")
    assert KEY.uid("1.2.3.5") != uid and OTHER.uid("1.2.3.4") != uid


def test_identifiers_and_date_shifts() -> None:
    pid = KEY.identifier("patient", "PID-1")
    assert len(pid) == 16 and pid.isalnum() and pid.isupper()
    assert pid == KEY.identifier("patient", "PID-1") != OTHER.identifier("patient", "PID-1")
    shifts = {KEY.date_shift_days(str(n)) for n in range(200)}
    assert min(shifts) >= 1 and max(shifts) <= MAX_SHIFT_DAYS and len(shifts) > 150


def test_key_files(tmp_path: Path) -> None:
    path = tmp_path / "key"
    created = PseudonymKey.create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert PseudonymKey.read(path) == created
    with pytest.raises(FileExistsError):
        PseudonymKey.create(path)
    short = tmp_path / "short"
    short.write_text("secret\n")
    with pytest.raises(InvalidInputError, match="holds 6 bytes; a key has at least 16"):
        PseudonymKey.read(short)
    with pytest.raises(InvalidInputError, match="cannot read the key file"):
        PseudonymKey.read(tmp_path / "missing")
