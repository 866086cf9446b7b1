"""C-GET and C-MOVE SCP: P10 regenerated from the archive, sent by C-STORE sub-operations.

The identifier selects instances as C-FIND would (the same index, the same
matching); each is regenerated (:func:`~dicomweb_archive.export.p10.export_instance`)
in the transfer syntax it arrived in when the receiver accepted that, else as
Explicit VR Little Endian, frames decoded
(:func:`~dicomweb_archive.export.transcode.to_explicit_little_endian`).
C-GET sends over the requesting association (the requestor proposed the
storage contexts, taking the SCP role); C-MOVE opens an association to the
Move Destination, whose address comes from the peers file only (``0xA801``
for a title it does not know).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.presentation import PresentationContext, build_context

from dicomweb_archive import tags, uids
from dicomweb_archive.dimse.associations import peer_of
from dicomweb_archive.dimse.context import ListenContext
from dicomweb_archive.dimse.find import (
    CANCEL,
    IDENTIFIER_DOES_NOT_MATCH,
    OUT_OF_RESOURCES,
    PENDING,
    UNABLE_TO_PROCESS,
    failure,
)
from dicomweb_archive.dimse.query import read_identifier
from dicomweb_archive.dimse.sop_classes import Verification
from dicomweb_archive.errors import QueryTimeoutError
from dicomweb_archive.export.p10 import export_instance
from dicomweb_archive.export.transcode import to_explicit_little_endian
from dicomweb_archive.model import paths
from dicomweb_archive.model.matching import InvalidQueryError
from dicomweb_archive.store.index import Level
from dicomweb_archive.types import InstanceKey, first_value

logger = logging.getLogger("dicomweb_archive.dimse")

#: Most presentation contexts one association may propose (PS3.8 9.3.2.2).
MAX_CONTEXTS = 128
#: What every receiver of images takes: asked for beside the instances' own syntax.
_UNCOMPRESSED = [uids.ExplicitVRLittleEndian, uids.ImplicitVRLittleEndian]

#: Whether the receiver accepted (SOP Class UID, Transfer Syntax UID).
Accepts = Callable[[str, str], bool]


@dataclass(frozen=True)
class Selected:
    """One instance to send."""

    key: InstanceKey
    sop_class_uid: str
    #: The transfer syntax it arrived in (its ``info``).
    transfer_syntax_uid: str


def select(context: ListenContext, identifier: Dataset) -> list[Selected]:
    """The instances an identifier names (any level), in the index's order."""
    search = read_identifier(identifier)
    search.query.include = {tags.SOPClassUID}
    context.settle()
    selected = []
    for row in context.index.search(Level.INSTANCE, search.query):
        key = InstanceKey(
            str(first_value(row, tags.StudyInstanceUID)),
            str(first_value(row, tags.SeriesInstanceUID)),
            str(first_value(row, tags.SOPInstanceUID)),
        )
        info = context.archive.read_json_gz(paths.instance_info(*key))
        selected.append(
            Selected(key, str(first_value(row, tags.SOPClassUID)), info["transferSyntaxUID"])
        )
    return selected


def regenerate(context: ListenContext, instance: Selected, accepts: Accepts) -> Dataset:
    """The instance as a data set in a transfer syntax the receiver accepted."""
    archive, key = context.archive, instance.key
    sop_class, syntax = instance.sop_class_uid, instance.transfer_syntax_uid
    if not accepts(sop_class, syntax) and any(accepts(sop_class, ts) for ts in _UNCOMPRESSED):
        [meta] = archive.read_json_gz(paths.instance_metadata(*key))
        data = to_explicit_little_endian(archive, *key, meta)
    else:
        data = export_instance(archive, *key)
    return pydicom.dcmread(io.BytesIO(data))


def proposed_contexts(selected: list[Selected]) -> list[PresentationContext]:
    """What an association sending ``selected`` proposes: each SOP Class in each
    syntax the instances arrived in, and uncompressed."""
    wanted: dict[str, set[str]] = {}
    for instance in selected:
        wanted.setdefault(instance.sop_class_uid, set()).add(instance.transfer_syntax_uid)
    contexts = []
    for sop_class, syntaxes in sorted(wanted.items()):
        for syntax in sorted(syntaxes - set(_UNCOMPRESSED)):
            contexts.append(build_context(sop_class, [syntax]))
        contexts.append(build_context(sop_class, _UNCOMPRESSED))
    if len(contexts) > MAX_CONTEXTS:
        logger.warning("%d presentation contexts needed, %d proposed", len(contexts), MAX_CONTEXTS)
    return contexts[:MAX_CONTEXTS]


def accepted_by(assoc: Any) -> Accepts:
    accepted = {
        (str(cx.abstract_syntax), str(ts))
        for cx in assoc.accepted_contexts
        for ts in cx.transfer_syntax
    }
    return lambda sop_class, syntax: (sop_class, syntax) in accepted


def _selection(context: ListenContext, event: Any, what: str) -> list[Selected] | Dataset:
    """The instances to send, or the failure to answer with."""
    try:
        return select(context, event.identifier)
    except InvalidQueryError as exc:
        status, reason = IDENTIFIER_DOES_NOT_MATCH, str(exc)
    except QueryTimeoutError as exc:
        status, reason = OUT_OF_RESOURCES, str(exc)
    except Exception as exc:  # the association goes on; the log has the traceback
        logger.exception("%s from %s", what, peer_of(event.assoc))
        status, reason = UNABLE_TO_PROCESS, f"internal error: {type(exc).__name__}"
    logger.warning("%s from %s failed (0x%04X): %s", what, peer_of(event.assoc), status, reason)
    return failure(status, reason)


def _send(
    context: ListenContext, event: Any, selected: list[Selected], accepts: Callable[[], Accepts]
) -> Iterator[tuple[int | Dataset, Dataset | None]]:
    for instance in selected:
        if event.is_cancelled:
            yield CANCEL, None
            return
        try:
            dataset = regenerate(context, instance, accepts())
        except Exception as exc:  # a failed sub-operation; the others go on
            sop = instance.key.sop_instance_uid
            logger.warning("SOP Instance %s could not be regenerated: %s", sop, exc)
            context.associations.count(event.assoc, "failed")
            # A data set that cannot be sent: counted as failed, listed in the
            # Failed SOP Instance UID List of the final response.
            unsendable = Dataset()
            unsendable.SOPInstanceUID = sop
            yield PENDING, unsendable
            continue
        context.associations.count(event.assoc, "sent")
        yield PENDING, dataset


def handle_get(event: Any, context: ListenContext) -> Iterator[Any]:
    """The handler of ``evt.EVT_C_GET``: the count, then (status, data set) pairs."""
    selected = _selection(context, event, "C-GET")
    if isinstance(selected, Dataset):
        yield 1
        yield selected, None
        return
    yield len(selected)
    accepts = accepted_by(event.assoc)
    yield from _send(context, event, selected, lambda: accepts)


def handle_move(event: Any, context: ListenContext) -> Iterator[Any]:
    """The handler of ``evt.EVT_C_MOVE``: the destination, the count, then pairs."""
    destination = str(event.move_destination).strip()
    peer = context.config.peers.get(destination)
    if peer is None:
        logger.warning(
            "C-MOVE from %s failed (0xA801): Move Destination %r is not a known peer",
            peer_of(event.assoc),
            destination,
        )
        yield None, None
        return
    selected = _selection(context, event, "C-MOVE")
    stores: list[Any] = []

    def established(store_event: Any) -> None:
        stores.append(store_event.assoc)

    # A failure is answered over an association too: one that can only echo.
    contexts = (
        proposed_contexts(selected) if isinstance(selected, list) else [build_context(Verification)]
    )
    options = {
        "contexts": contexts,
        "evt_handlers": [(evt.EVT_ESTABLISHED, established)],
        "max_pdu": context.config.max_pdu,
    }
    yield peer.host, peer.port, options
    if isinstance(selected, Dataset):
        yield 1
        yield selected, None
        return
    yield len(selected)
    yield from _send(context, event, selected, lambda: accepted_by(stores[0]))
