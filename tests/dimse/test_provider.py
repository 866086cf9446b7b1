"""The AE: what it accepts, what it refuses and why, its limits."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomweb_archive import uids
from dicomweb_archive.dimse.provider import Listener, accepted_transfer_syntaxes
from dicomweb_archive.dimse.sop_classes import Verification
from tests.dimse.conftest import associate, c_store_fragments

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
#: JPIP Referenced: a transfer syntax whose pixels are elsewhere; never archived.
JPIP_REFERENCED = "1.2.840.10008.1.2.4.94"


def test_echo_on_a_new_folder(start_listener: Callable[..., Listener], tmp_path: Path) -> None:
    listener = start_listener(tmp_path / "new" / "archive")
    assoc = associate(listener, Verification)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    assert (tmp_path / "new" / "archive" / "manifest.json").exists()


def test_an_unknown_sop_class_and_an_unarchived_transfer_syntax_are_refused_and_named(
    start_listener: Callable[..., Listener], caplog: pytest.LogCaptureFixture
) -> None:
    listener = start_listener()
    with caplog.at_level(logging.INFO, logger="dicomweb_archive.dimse"):
        assoc = associate(
            listener,
            ("1.2.3.4.5.6.7", [uids.ExplicitVRLittleEndian]),
            (CT_IMAGE_STORAGE, [JPIP_REFERENCED]),
            Verification,
        )
        assert assoc.is_established
        refused = {cx.abstract_syntax: cx.status for cx in assoc.rejected_contexts}
        assoc.release()
    assert refused == {
        "1.2.3.4.5.6.7": "Abstract Syntax Not Supported",
        CT_IMAGE_STORAGE: "Transfer Syntax(es) Not Supported",
    }
    [line] = [r.getMessage() for r in caplog.records if "accepted" in r.getMessage()]
    assert (
        "1 presentation contexts; 2 refused: 1.2.3.4.5.6.7 (abstract syntax not supported)" in line
    )
    assert f"{CT_IMAGE_STORAGE} (transfer syntax(es) not supported)" in line


def test_one_association_too_many_is_rejected(
    start_listener: Callable[..., Listener], caplog: pytest.LogCaptureFixture
) -> None:
    listener = start_listener(max_associations=1)
    first = associate(listener, Verification)
    assert first.is_established
    with caplog.at_level(logging.INFO, logger="dicomweb_archive.dimse"):
        second = associate(listener, Verification)
        assert second.is_rejected
    first.release()
    assert "rejected: more than 1 associations at once" in caplog.text


def test_an_allow_list(
    start_listener: Callable[..., Listener], caplog: pytest.LogCaptureFixture
) -> None:
    listener = start_listener(allowed_calling=frozenset({"FRIEND"}))
    with caplog.at_level(logging.INFO, logger="dicomweb_archive.dimse"):
        stranger = associate(listener, Verification, ae_title="STRANGER")
        assert stranger.is_rejected
        friend = associate(listener, Verification, ae_title="FRIEND")
        assert friend.is_established
        friend.release()
    assert "from STRANGER@127.0.0.1" in caplog.text
    assert "calling AE title 'STRANGER' is not on the allow-list" in caplog.text


def test_explicit_vr_little_endian_is_chosen_first_implicit_last() -> None:
    syntaxes = accepted_transfer_syntaxes()
    assert syntaxes[0] == uids.ExplicitVRLittleEndian
    assert syntaxes[-1] == uids.ImplicitVRLittleEndian
    assert set(syntaxes) == uids.ARCHIVED_TRANSFER_SYNTAXES
    assert JPIP_REFERENCED not in syntaxes


def test_stopping_catches_up_with_deferred_writes(start_listener: Callable[..., Listener]) -> None:
    listener = start_listener()
    listener.context.catalog.defer(["1.2.3"])
    listener.stop()
    assert listener.server is None


def test_stopping_amid_a_transfer_ends_it_and_leaves_no_file(
    start_listener: Callable[..., Listener],
) -> None:
    listener = start_listener()
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assoc = associate(listener, (CT_IMAGE_STORAGE, [uids.ExplicitVRLittleEndian]))
    [context] = assoc.accepted_contexts
    for fragment in c_store_fragments(source, int(context.context_id), 4096)[:-1]:
        assoc.dul.send_pdu(fragment)
    receipts = listener.context.receipts
    deadline = time.monotonic() + 10
    while not receipts.held():
        assert time.monotonic() < deadline, "nothing received into a file"
        time.sleep(0.01)
    started = time.monotonic()
    listener.stop()
    assert time.monotonic() - started < 5
    assert not receipts.folder.exists()
    deadline = time.monotonic() + 10
    while not assoc.is_aborted:
        assert time.monotonic() < deadline, "the requestor's association goes on"
        time.sleep(0.01)
