from __future__ import annotations

import pytest

from dicomweb_archive import uids


@pytest.mark.parametrize("value", ["1.2.3", "1.2.840.10008.1.2.1", "0.1", "1.02"])
def test_valid_uids(value: str) -> None:
    assert uids.is_valid_uid(value)


@pytest.mark.parametrize("value", ["", "../etc", "1..2", "1.2.", "a.b", "1" * 65, "1.2/3", "1.2 "])
def test_invalid_uids(value: str) -> None:
    assert not uids.is_valid_uid(value)


def test_strict_uids_refuse_leading_zeros() -> None:
    assert not uids.is_valid_uid("1.02", strict=True)


def test_frame_labels() -> None:
    assert uids.frame_transfer_syntax(uids.ExplicitVRBigEndian) == uids.ExplicitVRLittleEndian
    assert uids.frame_transfer_syntax(uids.ImplicitVRLittleEndian) == uids.ExplicitVRLittleEndian
    assert uids.frame_media_type(uids.HTJ2KLosslessRPCL) == "image/jphc"
    assert uids.frame_media_type("1.2.840.10008.1.2.4.70") == "image/jpeg"
    assert uids.frame_media_type(uids.ExplicitVRLittleEndian) == "application/octet-stream"


def test_default_transfer_syntaxes_come_from_the_frame_table() -> None:
    for media_type, uid in uids.DEFAULT_TRANSFER_SYNTAX.items():
        if media_type != "application/dicom":
            assert uids.frame_media_type(uid) == media_type
    assert uids.DEFAULT_TRANSFER_SYNTAX["image/jphc"] == uids.HTJ2KLossless
    assert uids.DEFAULT_TRANSFER_SYNTAX["image/jpeg"] == "1.2.840.10008.1.2.4.70"
    assert uids.DEFAULT_TRANSFER_SYNTAX["application/octet-stream"] == uids.ExplicitVRLittleEndian
    assert uids.DEFAULT_TRANSFER_SYNTAX["application/dicom"] == uids.ExplicitVRLittleEndian


def test_known_transfer_syntaxes() -> None:
    from dicomweb_archive.uids import is_known_transfer_syntax

    assert is_known_transfer_syntax("1.2.840.10008.1.2.4.80")
    assert is_known_transfer_syntax("1.2.840.10008.1.2")
    assert not is_known_transfer_syntax("1.2.4.10008.1.2.81")
    assert not is_known_transfer_syntax("")
