"""C-FIND SCP (Patient Root and Study Root): answered from the QIDO-RS index.

Studies, series and images are the index's rows at their level; a PATIENT
level query (Patient Root only) searches studies and answers once per patient
with the patient's counts.  Deferred writes (C-STORE, STOW-RS) are settled
first, so a query right after a store finds it.  Failures (PS3.4 C.4.1.1.4):
``0xA900`` for an identifier that cannot be matched (the reason in the Error
Comment), ``0xA700`` for a search beyond its time budget, ``0xC000`` otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset

from dicomweb_archive import tags
from dicomweb_archive.dimse.associations import peer_of
from dicomweb_archive.dimse.context import ListenContext
from dicomweb_archive.dimse.query import Search, match_identifier, patients, read_identifier
from dicomweb_archive.dimse.sop_classes import PatientRootQueryRetrieveInformationModelFind
from dicomweb_archive.errors import QueryTimeoutError
from dicomweb_archive.model.matching import InvalidQueryError
from dicomweb_archive.types import JSONDataset

logger = logging.getLogger("dicomweb_archive.dimse")

PENDING = 0xFF00
CANCEL = 0xFE00
IDENTIFIER_DOES_NOT_MATCH = 0xA900
OUT_OF_RESOURCES = 0xA700
UNABLE_TO_PROCESS = 0xC000

Response = tuple[int | Dataset, Dataset | None]


def failure(status: int, comment: str) -> Dataset:
    """A failure Status with its Error Comment (an LO: 64 characters at most)."""
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = comment[:64]
    return ds


def search(context: ListenContext, identifier: Dataset, patient_root: bool) -> Search:
    """The identifier read, checked against the information model."""
    found = read_identifier(identifier)
    if found.level == "PATIENT" and not patient_root:
        raise InvalidQueryError("the PATIENT level belongs to Patient Root, not Study Root")
    return found


def matches(context: ListenContext, found: Search) -> list[tuple[JSONDataset, JSONDataset]]:
    """Each match's row, and what the level adds to it (a patient's counts)."""
    context.settle()
    if found.level == "PATIENT":
        assert found.query.include is not None
        found.query.include |= {tags.NumberOfStudyRelatedSeries, tags.NumberOfStudyRelatedInstances}
        return patients(context.index.search(found.index_level, found.query))
    return [(row, {}) for row in context.index.search(found.index_level, found.query)]


def handle_find(event: Any, context: ListenContext) -> Iterator[Response]:
    """The handler of ``evt.EVT_C_FIND``."""
    patient_root = (
        str(event.request.AffectedSOPClassUID) == PatientRootQueryRetrieveInformationModelFind
    )
    try:
        found = search(context, event.identifier, patient_root)
        rows = matches(context, found)
    except InvalidQueryError as exc:
        yield _failed(event, IDENTIFIER_DOES_NOT_MATCH, str(exc))
        return
    except QueryTimeoutError as exc:
        yield _failed(event, OUT_OF_RESOURCES, str(exc))
        return
    except Exception as exc:  # the association goes on; the log has the traceback
        logger.exception("C-FIND from %s", peer_of(event.assoc))
        yield _failed(event, UNABLE_TO_PROCESS, f"internal error: {type(exc).__name__}")
        return
    context.associations.count(event.assoc, "found", len(rows))
    for row, extra in rows:
        if event.is_cancelled:
            yield CANCEL, None
            return
        yield PENDING, match_identifier(row, found, context.config.ae_title, extra)
    yield 0x0000, None


def _failed(event: Any, status: int, reason: str) -> Response:
    logger.warning("C-FIND from %s failed (0x%04X): %s", peer_of(event.assoc), status, reason)
    return failure(status, reason), None
