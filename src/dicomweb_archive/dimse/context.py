"""What every DIMSE service works on: the archive, its catalog and index, the config."""

from __future__ import annotations

from dataclasses import dataclass

from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.dimse.associations import Associations
from dicomweb_archive.dimse.config import ListenConfig
from dicomweb_archive.dimse.receipt import Receipts
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import QidoIndex


@dataclass
class ListenContext:
    """The served archive, passed to each handler with its event."""

    archive: Archive
    #: The archive's own conversion options (from its manifest): C-STORE stores with them.
    options: ConvertOptions
    catalog: Catalog
    #: The QIDO-RS index C-FIND and the retrievals search.
    index: QidoIndex
    config: ListenConfig
    #: What each association did, for its log line.
    associations: Associations
    #: The files C-STORE data sets are received into.
    receipts: Receipts

    def settle(self) -> None:
        """Bring the documents and index rows of deferred writes up to date.

        A search after a store (ours, or STOW-RS of a ``dwa serve`` on the same
        archive) then finds it, as QIDO-RS does.
        """
        if self.catalog.journal.stale():
            self.catalog.settle()
