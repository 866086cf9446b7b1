"""The secret key that makes pseudonyms consistent across runs and machines.

Replacement UIDs, patient IDs and date shifts are keyed hashes (HMAC-SHA256) of
the original values: the same key maps the same original to the same
replacement wherever and whenever it runs, so studies de-identified later still
match those de-identified before, and without the key the originals cannot be
found again by hashing guesses.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from dicomweb_archive.errors import InvalidInputError

#: Shortest accepted key, in bytes of the key file.
MIN_KEY_BYTES: Final = 16
#: Dates shift back by 1 to this many days (about ten years), the same for one patient.
MAX_SHIFT_DAYS: Final = 3652


@dataclass(frozen=True)
class PseudonymKey:
    """A secret; every replacement value is derived from it and the original value."""

    secret: bytes

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> PseudonymKey:
        """The key in the file at ``path`` (its bytes, surrounding white space ignored)."""
        try:
            secret = Path(path).read_bytes().strip()
        except OSError as exc:
            raise InvalidInputError(f"cannot read the key file {path}: {exc.strerror}") from exc
        if len(secret) < MIN_KEY_BYTES:
            raise InvalidInputError(
                f"the key file {path} holds {len(secret)} bytes; a key has at least "
                f"{MIN_KEY_BYTES} (a new one: a file name that does not exist yet)"
            )
        return cls(secret)

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> PseudonymKey:
        """A new random key written to ``path`` (readable by its owner only)."""
        secret = secrets.token_hex(32).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret + b"\n")
        return cls(secret)

    def digest(self, purpose: str, value: str) -> bytes:
        """HMAC-SHA256 of ``value`` for one ``purpose`` (uid, patient id, date shift)."""
        message = purpose.encode() + b"\x00" + value.encode("utf-8", "surrogateescape")
        return hmac.new(self.secret, message, hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """``2.25.<int>``: a UUID (version 8, PS3.5 B.2) made of the keyed hash."""
        number = int.from_bytes(self.digest("uid", original)[:16], "big")
        number &= ~(0xF << 76)  # version 8: custom
        number |= 0x8 << 76
        number &= ~(0x3 << 62)  # variant: RFC 4122
        number |= 0x2 << 62
        return f"2.25.{number}"

    def identifier(self, purpose: str, original: str) -> str:
        """A 16-character identifier (``[0-9A-Z]``) standing for ``original``."""
        number = int.from_bytes(self.digest(purpose, original)[:10], "big")
        digits = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
        out = []
        for _ in range(16):
            number, rest = divmod(number, len(digits))
            out.append(digits[rest])
        return "".join(out)

    def date_shift_days(self, patient: str) -> int:
        """How many days the dates of ``patient`` move back (1 to :data:`MAX_SHIFT_DAYS`)."""
        return 1 + int.from_bytes(self.digest("date-shift", patient)[:4], "big") % MAX_SHIFT_DAYS
