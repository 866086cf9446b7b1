"""Message fragments as they arrive: a C-STORE data set to a file, anything else bounded."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.pdu_primitives import P_DATA

from dicomweb_archive.demo.samples import MULTIFRAME_SOP_CLASS, write_multiframe
from dicomweb_archive.dimse.fragments import MAX_HELD
from dicomweb_archive.dimse.provider import Listener
from dicomweb_archive.dimse.sop_classes import StudyRootQueryRetrieveInformationModelFind
from dicomweb_archive.dimse.store import SUCCESS
from tests.dimse.conftest import associate, c_store_fragments, exported

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"


def _wait(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


class PairedFragments(DIMSEServiceProvider):
    """A requestor's DIMSE provider sending a message's fragments two to a
    P-DATA-TF, as PS3.8 allows: the command's with the data set's first."""

    def send_msg(self, primitive: Any, context_id: int) -> None:
        sent: list[P_DATA] = []
        send_pdu = self.dul.send_pdu
        self.dul.send_pdu = sent.append  # type: ignore[method-assign]
        try:
            super().send_msg(primitive, context_id)
        finally:
            del self.dul.send_pdu
        fragments = [list(pdv) for one in sent for pdv in one.presentation_data_value_list]
        for start in range(0, len(fragments), 2):
            pair = P_DATA()
            pair.presentation_data_value_list = fragments[start : start + 2]
            send_pdu(pair)


def test_a_command_and_its_data_set_in_one_pdu(
    start_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    listener = start_listener()
    # Larger than an association may hold in memory: it must go to a file.
    frames = MAX_HELD // (2 * 256 * 256) + 2
    source = pydicom.dcmread(
        write_multiframe(tmp_path / "mf.dcm", frames=frames, rows=256, columns=256)
    )
    assoc = associate(listener, (MULTIFRAME_SOP_CLASS, [EXPLICIT]))
    assoc.dimse = PairedFragments(assoc)
    status = assoc.send_c_store(source)
    assoc.release()
    assert status.Status == SUCCESS
    assert exported(listener.archive, source).PixelData == source.PixelData
    assert listener.context.receipts.held() == []


@pytest.mark.parametrize("end", ["A-ABORT", "connection closed"])
def test_an_association_ended_mid_transfer_leaves_no_file(
    start_listener: Callable[..., Listener], end: str, caplog: pytest.LogCaptureFixture
) -> None:
    listener = start_listener()
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assoc = associate(listener, (CT_IMAGE_STORAGE, [EXPLICIT]))
    [context] = assoc.accepted_contexts
    fragments = c_store_fragments(source, int(context.context_id), 4096)
    for fragment in fragments[:-1]:  # all but the data set's last fragment
        assoc.dul.send_pdu(fragment)
    received = sum(len(f.presentation_data_value_list[0][1]) - 1 for f in fragments[1:-1])
    receipts = listener.context.receipts

    def receiving() -> bool:
        held = receipts.held()
        return len(held) == 1 and held[0].stat().st_size > received

    _wait(receiving, "the data set is not being received into a file")
    with caplog.at_level(logging.INFO, logger="dicomweb_archive.dimse"):
        if end == "A-ABORT":
            assoc.abort()
        else:
            assoc.dul.socket.close()
        _wait(lambda: receipts.held() == [], "the file of an ended association is still there")
        _wait(lambda: "aborted after" in caplog.text, "the association is not logged aborted")
    assert listener.archive.study_uids() == []


def test_an_identifier_too_large_to_hold_aborts_the_association(
    start_listener: Callable[..., Listener], caplog: pytest.LogCaptureFixture
) -> None:
    listener = start_listener()
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    uids = [f"1.2.826.0.1.3680043.8.498.{n}" for n in range(MAX_HELD // 30)]
    identifier.StudyInstanceUID = uids
    assoc = associate(listener, StudyRootQueryRetrieveInformationModelFind)
    with caplog.at_level(logging.INFO, logger="dicomweb_archive.dimse"):
        answers = list(assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind))
        _wait(lambda: assoc.is_aborted, "the association goes on")
        _wait(lambda: "aborted after" in caplog.text, "the association is not logged aborted")
    assert all(status == Dataset() for status, _ in answers)
    assert f"a message holds more than {MAX_HELD} bytes" in caplog.text
    # A smaller identifier is answered as ever.
    identifier.StudyInstanceUID = uids[:1000]
    again = associate(listener, StudyRootQueryRetrieveInformationModelFind)
    [(status, _)] = list(again.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind))
    again.release()
    assert status.Status == SUCCESS
