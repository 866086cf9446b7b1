"""What both encoders share: the character sets named without pydicom."""

from __future__ import annotations

import pytest
from pydicom.charset import convert_encodings, python_encoding

from dicomweb_archive.p10.encoded import _SINGLE_TERMS, charset_encodings, encodings_of
from dicomweb_archive.p10.values import DEFAULT_ENCODINGS


def test_single_terms_are_pydicoms() -> None:
    for term, encoding in _SINGLE_TERMS.items():
        assert python_encoding[term] == encoding
        assert convert_encodings(term) == [encoding]


@pytest.mark.parametrize(
    "raw",
    [
        b"ISO_IR 100",
        b"ISO_IR 192 ",
        b"\\ISO 2022 IR 87",
        b"ISO 2022 IR 6\\ISO 2022 IR 87",
        b"ISO_IR100",  # misspelled: pydicom corrects it
        b"",
        b"\\",
    ],
)
def test_charset_encodings_as_pydicom_converts_them(raw: bytes) -> None:
    terms = [t.strip() for t in raw.decode("ascii").split("\\")]
    if not any(terms):
        assert charset_encodings(raw) == DEFAULT_ENCODINGS
        return
    expected = convert_encodings(terms if len(terms) > 1 else terms[0])
    assert charset_encodings(raw) == expected
    assert encodings_of(terms) == expected
