"""C-GET and C-MOVE, with pynetdicom as the requestor and as the Move Destination."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts, build_role, evt

from dicomweb_archive import Converter, ConvertOptions, uids
from dicomweb_archive.dimse.config import Peer
from dicomweb_archive.dimse.provider import Listener
from dicomweb_archive.dimse.retrieve import Selected, proposed_contexts
from dicomweb_archive.dimse.sop_classes import (
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)
from dicomweb_archive.model import paths
from dicomweb_archive.types import InstanceKey
from tests.export.test_p10 import _dataset

SOURCES = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm")
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def _identifier(**keys: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    inputs = [str(get_testdata_file(name)) for name in SOURCES]
    assert Converter(tmp_path / "archive", ConvertOptions(workers=1)).convert(inputs).ok
    return tmp_path / "archive"


def _receiver(received: list[Dataset]) -> Callable[[Any], int]:
    """A C-STORE handler keeping what it receives in ``received``."""

    def store(event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        received.append(ds)
        return 0x0000

    return store


@pytest.fixture
def destination() -> Iterator[tuple[int, list[Dataset]]]:
    """A pynetdicom storage SCP, the Move Destination ``DEST``; yields its port and what it got."""
    received: list[Dataset] = []

    ae = AE(ae_title="DEST")
    ae.supported_contexts = StoragePresentationContexts
    server = ae.start_server(  # port 0: a free one, bound here
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, _receiver(received))]
    )
    yield int(server.server_address[1]), received
    server.shutdown()


def test_move_to_a_known_destination(
    start_listener: Callable[..., Listener],
    archive: Path,
    destination: tuple[int, list[Dataset]],
) -> None:
    port, received = destination
    listener = start_listener(archive, peers={"DEST": Peer("DEST", "127.0.0.1", port)})
    ae = AE(ae_title="MOVER")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title="DWA")
    ct = get_testdata_file("CT_small.dcm", read=True)
    identifier = _identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=ct.StudyInstanceUID)
    answers = list(
        assoc.send_c_move(identifier, "DEST", StudyRootQueryRetrieveInformationModelMove)
    )
    assoc.release()
    final = answers[-1][0]
    assert final.Status == 0x0000 and final.NumberOfCompletedSuboperations == 1
    [got] = received
    assert _dataset(got) == _dataset(ct) and got.PixelData == ct.PixelData


def test_move_to_an_unknown_destination(
    start_listener: Callable[..., Listener], archive: Path
) -> None:
    listener = start_listener(archive)
    ae = AE(ae_title="MOVER")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title="DWA")
    identifier = _identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID="1.2.3")
    [(status, _)] = assoc.send_c_move(
        identifier, "ELSEWHERE", StudyRootQueryRetrieveInformationModelMove
    )
    assoc.release()
    assert status.Status == 0xA801


def _get(
    listener: Listener, syntaxes: list[str], **keys: Any
) -> tuple[Dataset, Dataset | None, list[Dataset]]:
    """C-GET by a requestor taking each of ``syntaxes`` (a context each) for
    Secondary Capture, CT and MR."""
    received: list[Dataset] = []

    ae = AE(ae_title="GETTER")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    roles = []
    for sop_class in (SECONDARY_CAPTURE, "1.2.840.10008.5.1.4.1.1.2", MR_IMAGE_STORAGE):
        for syntax in syntaxes:
            ae.add_requested_context(sop_class, syntax)
        roles.append(build_role(sop_class, scp_role=True))
    assoc = ae.associate(
        "127.0.0.1",
        listener.port,
        ae_title="DWA",
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, _receiver(received))],
    )
    answers = list(assoc.send_c_get(_identifier(**keys), StudyRootQueryRetrieveInformationModelGet))
    assoc.release()
    status, identifier = answers[-1]
    return status, identifier, received


def test_get_decodes_for_a_requestor_of_uncompressed_only(
    start_listener: Callable[..., Listener], archive: Path
) -> None:
    listener = start_listener(archive)
    j2k = get_testdata_file("JPEG2000.dcm", read=True)
    final, _, [got] = _get(
        listener,
        [uids.ExplicitVRLittleEndian],
        QueryRetrieveLevel="IMAGE",
        StudyInstanceUID=j2k.StudyInstanceUID,
        SeriesInstanceUID=j2k.SeriesInstanceUID,
        SOPInstanceUID=j2k.SOPInstanceUID,
    )
    assert final.Status == 0x0000
    assert got.file_meta.TransferSyntaxUID == uids.ExplicitVRLittleEndian
    assert got.Rows == j2k.Rows and len(got.PixelData) == j2k.Rows * j2k.Columns * 2
    # The one the requestor takes as it is arrives as it was stored.
    final, _, [same] = _get(
        listener,
        ["1.2.840.10008.1.2.4.91", uids.ExplicitVRLittleEndian],
        QueryRetrieveLevel="IMAGE",
        StudyInstanceUID=j2k.StudyInstanceUID,
        SeriesInstanceUID=j2k.SeriesInstanceUID,
        SOPInstanceUID=j2k.SOPInstanceUID,
    )
    assert same.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.91"


def test_an_instance_that_cannot_be_regenerated_fails_alone(
    start_listener: Callable[..., Listener], archive: Path
) -> None:
    ct = get_testdata_file("CT_small.dcm", read=True)
    key = InstanceKey(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    (archive / paths.frame_path(*key, 1)).unlink()
    listener = start_listener(archive)
    final, failed, received = _get(
        listener, [uids.ExplicitVRLittleEndian], QueryRetrieveLevel="PATIENT", PatientID="*"
    )
    assert final.Status == 0xB000  # some sub-operations failed
    assert final.NumberOfFailedSuboperations == 1
    assert failed is not None and failed.FailedSOPInstanceUIDList == ct.SOPInstanceUID
    assert sorted(str(ds.Modality) for ds in received) == ["MR", "NM"]


def test_contexts_proposed_to_a_move_destination() -> None:
    def selected(sop_class: str, syntax: str) -> Selected:
        return Selected(InstanceKey("1", "2", "3"), sop_class, syntax)

    contexts = proposed_contexts(
        [
            selected(SECONDARY_CAPTURE, "1.2.840.10008.1.2.4.91"),
            selected(SECONDARY_CAPTURE, uids.ImplicitVRLittleEndian),
            selected("1.2.840.10008.5.1.4.1.1.2", uids.ExplicitVRLittleEndian),
        ]
    )
    assert [(cx.abstract_syntax, cx.transfer_syntax) for cx in contexts] == [
        ("1.2.840.10008.5.1.4.1.1.2", [uids.ExplicitVRLittleEndian, uids.ImplicitVRLittleEndian]),
        (SECONDARY_CAPTURE, ["1.2.840.10008.1.2.4.91"]),
        (SECONDARY_CAPTURE, [uids.ExplicitVRLittleEndian, uids.ImplicitVRLittleEndian]),
    ]
    assert pydicom.uid.UID(SECONDARY_CAPTURE).is_valid
