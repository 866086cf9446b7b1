"""What every DICOMweb service works on: the archive and its index."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from starlette.requests import Request

from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.deidentify.keys import PseudonymKey
from dicomweb_archive.errors import UnauthorizedError
from dicomweb_archive.server.documents import Documents
from dicomweb_archive.server.renditions import DEFAULT_BUDGET, RenditionCache
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import QidoIndex
from dicomweb_archive.store.manifest import DuplicatePolicy

#: Largest STOW-RS request body accepted unless told otherwise.
DEFAULT_MAX_UPLOAD_BYTES = 2 * 1024**3


@dataclass
class Context:
    """The served archive, passed to each service function with the request."""

    #: Every study, folder or packed ZIP, read alike.
    archive: Archive
    #: Writes (STOW-RS) need ``Authorization: Bearer`` with this token when set.
    write_token: str | None = None
    #: STOW-RS refuses bodies beyond this size; None: no limit.
    max_upload_bytes: int | None = DEFAULT_MAX_UPLOAD_BYTES
    #: Where clients reach the service root (``https://host/dicomweb``); None:
    #: from each request (see :mod:`dicomweb_archive.server.urls`).
    base_url: str | None = None
    #: The key of de-identified retrieves (``?deidentify=``); None: refused.
    deidentify_key: PseudonymKey | None = field(default=None, repr=False)
    #: STOW-RS of a SOP Instance UID stored before with other content, or
    #: elsewhere: ``reject`` or ``overwrite``; None: the archive's manifest says.
    on_duplicate: DuplicatePolicy | None = None
    #: The QIDO-RS index, open while the application runs (its lifespan).
    index: QidoIndex | None = None
    #: The archive's conversion options, read from its manifest by the first
    #: STOW-RS request and kept.
    convert_options: ConvertOptions | None = field(default=None, repr=False)
    #: Bytes the renditions made on request may keep in the archive's cache.
    cache_budget: int = DEFAULT_BUDGET
    #: Metadata answers made, kept for the next request of the same document.
    documents: Documents = field(default_factory=Documents, repr=False)
    _catalog: Catalog | None = field(default=None, repr=False)
    _renditions: RenditionCache | None = field(default=None, repr=False)

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = Catalog(self.archive)
        return self._catalog

    @property
    def renditions(self) -> RenditionCache:
        if self._renditions is None:
            self._renditions = RenditionCache(self.archive, self.cache_budget)
        return self._renditions

    def is_behind(self, study: str | None) -> bool:
        """Whether documents a read of ``study`` (None: any study) needs are stale."""
        journal = self.catalog.journal
        return journal.is_stale(study) if study else bool(journal.stale())

    def settle(self, study: str | None) -> None:
        """Refresh the stale documents of ``study`` (None: of every study)."""
        if study:
            self.catalog.settle_study(study)
        else:
            self.catalog.settle()

    def search_index(self) -> QidoIndex:
        if self.index is None:
            raise RuntimeError("the QIDO-RS index is opened by the application's lifespan")
        return self.index

    def authorize_write(self, request: Request) -> None:
        """Refuse a write without the bearer token (when the server has one)."""
        if self.write_token is None:
            return
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise UnauthorizedError(
                "writing needs a bearer token", challenge='Bearer realm="dicomweb"'
            )
        given = credentials.strip().encode("utf-8", "replace")
        if not hmac.compare_digest(given, self.write_token.encode("utf-8")):
            raise UnauthorizedError(
                "the bearer token is not valid",
                challenge='Bearer realm="dicomweb", error="invalid_token"',
            )
