from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.pdu_primitives import P_DATA

from dicomweb_archive.dimse.config import ListenConfig
from dicomweb_archive.dimse.provider import Listener
from dicomweb_archive.export.p10 import export_instance
from dicomweb_archive.store.base import ReadableStore

Client = Callable[..., Any]


@pytest.fixture
def start_listener(tmp_path: Path) -> Iterator[Callable[..., Listener]]:
    """Start in-process listeners (port 0: a free one) over ``tmp_path/archive``."""
    started: list[Listener] = []

    def start(archive: Path | None = None, **config: Any) -> Listener:
        listener = Listener(str(archive or tmp_path / "archive"), ListenConfig(port=0, **config))
        started.append(listener.start())
        return listener

    yield start
    for listener in started:
        listener.stop()


def associate(listener: Listener, *contexts: Any, ae_title: str = "CLIENT", **kwargs: Any) -> Any:
    """A pynetdicom association to ``listener`` proposing ``contexts``
    (abstract syntax, or (abstract syntax, transfer syntaxes))."""
    ae = AE(ae_title=ae_title)
    for context in contexts:
        if isinstance(context, tuple):
            ae.add_requested_context(*context)
        else:
            ae.add_requested_context(context)
    return ae.associate("127.0.0.1", listener.port, ae_title=listener.config.ae_title, **kwargs)


def c_store_fragments(source: Dataset, context_id: int, max_pdu: int) -> list[P_DATA]:
    """A C-STORE request of ``source`` as the P-DATA primitives a requestor sends."""
    request = C_STORE()
    request.MessageID = 1
    request.AffectedSOPClassUID = source.SOPClassUID
    request.AffectedSOPInstanceUID = source.SOPInstanceUID
    request.Priority = 2
    request.DataSet = io.BytesIO(encode(source, False, True))
    message = C_STORE_RQ()
    message.primitive_to_message(request)
    return list(message.encode_msg(context_id, max_pdu))


def exported(archive: ReadableStore, source: Dataset) -> Dataset:
    """The P10 file the archive makes again of the instance ``source`` (as sent)."""
    uids = source.StudyInstanceUID, source.SeriesInstanceUID, source.SOPInstanceUID
    return pydicom.dcmread(io.BytesIO(export_instance(archive, *uids)))
