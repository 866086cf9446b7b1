"""The service class provider: one Application Entity over an archive, listening.

It accepts associations for Verification (C-ECHO), every storage SOP Class
(retired ones too) in every transfer syntax the archive keeps (C-STORE), and Patient Root and Study
Root Query/Retrieve (C-FIND, C-GET, C-MOVE).  A storage context also accepts
the SCP role a C-GET requestor proposes for it, so C-GET sends over the
requestor's own association.  The archive may be served by ``dwa serve`` at
the same time: both write through the same locks and journal, and each
settles the other's deferred writes before it searches.  Each association
receives its C-STORE data sets into files (:mod:`.fragments`, :mod:`.receipt`).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.transport import ThreadedAssociationServer

from dicomweb_archive import uids
from dicomweb_archive.collector import QuietCollector
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.dimse.associations import Associations
from dicomweb_archive.dimse.config import ListenConfig
from dicomweb_archive.dimse.context import ListenContext
from dicomweb_archive.dimse.find import handle_find
from dicomweb_archive.dimse.fragments import receiving_handler
from dicomweb_archive.dimse.receipt import Receipts
from dicomweb_archive.dimse.retrieve import handle_get, handle_move
from dicomweb_archive.dimse.sop_classes import QUERY_RETRIEVE, Verification, storage_sop_classes
from dicomweb_archive.dimse.store import handle_store
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.base import scratch_folder
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.flusher import Flusher
from dicomweb_archive.store.manifest import ensure, open_or_create

logger = logging.getLogger("dicomweb_archive.dimse")


def accepted_transfer_syntaxes() -> list[str]:
    """Every syntax the archive keeps, in the order one is chosen from a context
    proposing several: Explicit VR Little Endian first (every private element's
    VR kept), then the encapsulated ones (the sender's own bytes), Implicit VR
    Little Endian last."""
    native = [
        uids.ExplicitVRLittleEndian,
        uids.DeflatedExplicitVRLittleEndian,
        uids.ExplicitVRBigEndian,
        uids.ImplicitVRLittleEndian,
    ]
    encapsulated = sorted(uids.ARCHIVED_TRANSFER_SYNTAXES - set(native))
    return [native[0], *encapsulated, *native[1:]]


def application_entity(config: ListenConfig) -> AE:
    """The AE with its presentation contexts, allow-list and limits."""
    ae = AE(ae_title=config.ae_title)
    ae.maximum_associations = config.max_associations
    ae.acse_timeout = config.timeout
    ae.dimse_timeout = config.timeout
    ae.network_timeout = config.network_timeout
    ae.maximum_pdu_size = config.max_pdu
    ae.require_calling_aet = sorted(config.allowed_calling)
    syntaxes = accepted_transfer_syntaxes()
    for sop_class in storage_sop_classes():
        ae.add_supported_context(sop_class, syntaxes, scu_role=True, scp_role=True)
    ae.add_supported_context(Verification)
    for sop_class in QUERY_RETRIEVE:
        ae.add_supported_context(sop_class)
    return ae


class Listener:
    """``dwa listen`` over the archive at ``location``, until :meth:`stop`.

    An empty or new folder becomes an empty archive.
    """

    def __init__(self, location: str, config: ListenConfig) -> None:
        self.config = config
        self.archive = open_archive(location)
        options = ensure(self.archive.store, open_or_create(self.archive.store))
        catalog = Catalog(self.archive)
        # Beside the archive (its work area for an object store); what a
        # killed listener left there goes now.
        receipts = Receipts(Path(scratch_folder(self.archive.store)), config.max_dataset_size)
        self.context = ListenContext(
            archive=self.archive,
            options=ConvertOptions.for_archive(options, workers=1),
            catalog=catalog,
            index=catalog.open_index(),
            config=config,
            associations=Associations(config),
            receipts=receipts,
        )
        self.flusher = Flusher(catalog).start()
        # Full collections at quiet moments, not amid an association.
        self.collector = QuietCollector().start()
        self.ae = application_entity(config)
        self.server: ThreadedAssociationServer | None = None

    def start(self) -> Listener:
        """Listen; an address that cannot be bound (taken) raises :class:`OSError`,
        the listener stopped."""
        # AE.start_server(block=False), with the request handler that makes
        # each association receive its data sets into files.
        try:
            server = self.ae.make_server(
                (self.config.host, self.config.port),
                evt_handlers=self._handlers(),
                server_class=ThreadedAssociationServer,
                request_handler=receiving_handler(self.context.receipts),
            )
        except OSError:
            self.stop()
            raise
        self.ae._servers.append(server)  # pynetdicom's shutdown() takes it off the list
        threading.Thread(target=server.serve_forever, name="dwa-listen", daemon=True).start()
        self.server = server
        return self

    @property
    def port(self) -> int:
        """The port listened on (the one asked for, or the one given for 0)."""
        assert self.server is not None
        return int(self.server.server_address[1])

    def _handlers(self) -> list[Any]:
        context, associations = self.context, self.context.associations
        receipts = context.receipts
        return [
            (evt.EVT_C_STORE, handle_store, [context]),
            (evt.EVT_C_FIND, handle_find, [context]),
            (evt.EVT_C_GET, handle_get, [context]),
            (evt.EVT_C_MOVE, handle_move, [context]),
            (evt.EVT_ACCEPTED, associations.accepted),
            (evt.EVT_REJECTED, associations.rejected),
            (evt.EVT_RELEASED, lambda event: associations.ended(event, "released")),
            (evt.EVT_ABORTED, lambda event: associations.ended(event, "aborted")),
            # Data sets no handler took (the association ended mid-transfer) go.
            (evt.EVT_CONN_CLOSE, lambda event: receipts.discard(event.assoc)),
        ]

    def stop(self) -> None:
        """Stop listening, end the associations, then catch up with deferred writes.

        An association is aborted, but a data set being stored is stored first.
        """
        if self.server is not None:
            server, self.server = self.server, None
            server.shutdown()
            associations = server.active_associations
            for assoc in associations:
                # Blocking: pynetdicom makes abort() non-blocking during a handler.
                assoc.abort(block=True)
            for assoc in associations:
                assoc.join(self.config.timeout)
        self.flusher.stop()
        self.collector.stop()
        self.context.receipts.close()
        self.context.index.close()
        self.archive.close()

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
