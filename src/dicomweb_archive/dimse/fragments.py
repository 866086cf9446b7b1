"""Message fragments (PS3.8 E.2) as they arrive: a C-STORE data set's go to a file.

pynetdicom gathers every fragment of a message in memory until its last one.
Each association :class:`Listener <dicomweb_archive.dimse.provider.Listener>`
accepts has a :class:`FragmentReceiver` instead of pynetdicom's own DIMSE
provider: once a C-STORE request's command is complete, the fragments of its
data set are written to a :class:`~dicomweb_archive.dimse.receipt.Receipt` as
they come (pynetdicom's own ``STORE_RECV_CHUNKED_DATASET`` does the same, but
for every association of the process, in the system's temporary folder, and
leaves the file behind when the association ends before the handler runs).

What else a message holds in memory (its command, an identifier) is bounded
by :data:`MAX_HELD`: an association sending more is aborted.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dsutils import create_file_meta, encode_file_meta
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import RequestHandler

from dicomweb_archive.dimse.associations import peer_of
from dicomweb_archive.dimse.receipt import Receipts

logger = logging.getLogger("dicomweb_archive.dimse")

#: Bytes a message other than a C-STORE data set may hold in memory (its
#: command set, a C-FIND or retrieval identifier): a few thousand UIDs.
MAX_HELD = 4 * 1024 * 1024
#: The preamble and prefix of a P10 file (PS3.10 7.1).
_PREAMBLE = b"\x00" * 128 + b"DICM"


class FragmentReceiver(DIMSEServiceProvider):
    """An association's DIMSE service provider, C-STORE data sets written to ``receipts``."""

    def __init__(self, assoc: Any, receipts: Receipts) -> None:
        super().__init__(assoc)
        self.receipts = receipts
        #: The association went over :data:`MAX_HELD`: what else arrives is dropped.
        self.refused = False

    def receive_primitive(self, primitive: P_DATA) -> None:
        """Decode ``primitive``'s fragments one at a time.

        One P-DATA-TF may carry the last fragment of a command and the first of
        its data set: the data set's file is made between the two.
        """
        if not isinstance(primitive, P_DATA):
            super().receive_primitive(primitive)
            return
        for context_id, data in primitive.presentation_data_value_list:
            if self.refused:
                return
            if data[:1] and not data[0] & 1:  # a data set fragment
                self._to_file(self.message)
            one = P_DATA()
            one.presentation_data_value_list = cast(Any, [[context_id, data]])  # lists, not tuples
            super().receive_primitive(one)
            self._bound(self.message)

    def _to_file(self, message: Any) -> None:
        """Send ``message``'s data set to a file if it is a C-STORE request's."""
        if not isinstance(message, C_STORE_RQ) or message._data_set_file is not None:
            return
        command = message.command_set
        context = next(
            (cx for cx in self.assoc.accepted_contexts if cx.context_id == message.context_id),
            None,
        )
        if context is None:  # not a context of this association: pynetdicom refuses it
            return
        try:
            meta = create_file_meta(
                sop_class_uid=command.AffectedSOPClassUID,
                sop_instance_uid=command.AffectedSOPInstanceUID,
                transfer_syntax=context.transfer_syntax[0],
            )
            head = _PREAMBLE + encode_file_meta(meta)
        except Exception as exc:  # a request pynetdicom refuses: its data set stays in memory
            logger.warning("C-STORE from %s: no file meta: %s", peer_of(self.assoc), exc)
            return
        receipt = self.receipts.open(self.assoc, head)
        # pynetdicom's interface for its own temporary file: it writes each
        # fragment to it and hands the path to the handler (event.dataset_path).
        message._data_set_file = cast(Any, receipt)
        message._data_set_path = receipt.path

    def _bound(self, message: Any) -> None:
        """Abort the association if ``message`` holds more than :data:`MAX_HELD` in memory."""
        if message is None:
            return
        held = message.encoded_command_set.tell()
        if message._data_set_file is None:
            held += message.data_set.tell()
        if held <= MAX_HELD:
            return
        self.refused = True
        self.message = None
        logger.warning(
            "association from %s aborted: a message holds more than %d bytes besides "
            "a C-STORE data set",
            peer_of(self.assoc),
            MAX_HELD,
        )
        # As pynetdicom ends an association whose message it cannot decode:
        # an A-P-ABORT, and the association's reactor ends it (EVT_ABORTED).
        self.dul.event_queue.put("Evt19")


def receiving_handler(receipts: Receipts) -> type[RequestHandler]:
    """The server's request handler: each association it accepts receives into ``receipts``."""

    class ReceivingHandler(RequestHandler):
        def _create_association(self) -> Any:
            assoc = super()._create_association()
            assoc.dimse = FragmentReceiver(assoc, receipts)
            return assoc

    return ReceivingHandler
