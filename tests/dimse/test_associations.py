"""One log line per association, with what it did; the reason of a rejection."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from dicomweb_archive.dimse.associations import Associations
from dicomweb_archive.dimse.config import ListenConfig


def _event(title: str = "CT1", port: int = 4000) -> Any:
    requestor = SimpleNamespace(ae_title=title, address="10.0.0.1", port=port)
    refused = SimpleNamespace(abstract_syntax="1.2.3", status="Abstract Syntax Not Supported")
    assoc = SimpleNamespace(
        requestor=requestor,
        acceptor=SimpleNamespace(ae_title="DWA"),
        accepted_contexts=[object(), object()],
        rejected_contexts=[refused],
    )
    return SimpleNamespace(assoc=assoc)


def test_an_association_from_accept_to_release(caplog: pytest.LogCaptureFixture) -> None:
    associations = Associations(ListenConfig())
    event = _event()
    with caplog.at_level(logging.INFO, logger="dicomweb_archive.dimse"):
        associations.accepted(event)
        associations.count(event.assoc, "stored", 3)
        associations.count(event.assoc, "failed")
        associations.ended(event, "released")
        associations.ended(event, "released")  # a second end says nothing
    accepted, ended = (r.getMessage() for r in caplog.records)
    assert accepted == (
        "association 1 from CT1@10.0.0.1:4000 accepted (called AE DWA, 2 presentation "
        "contexts; 1 refused: 1.2.3 (abstract syntax not supported))"
    )
    assert ended.startswith("association 1 from CT1@10.0.0.1:4000 released after ")
    assert ended.endswith(": 1 failed, 3 stored")


def test_rejections_say_why(caplog: pytest.LogCaptureFixture) -> None:
    associations = Associations(
        ListenConfig(allowed_calling=frozenset({"CT1"}), max_associations=2)
    )
    with caplog.at_level(logging.INFO, logger="dicomweb_archive.dimse"):
        associations.rejected(_event("MR9"))
        associations.rejected(_event("CT1"))
    assert [r.getMessage() for r in caplog.records] == [
        "association from MR9@10.0.0.1:4000 rejected: "
        "calling AE title 'MR9' is not on the allow-list",
        "association from CT1@10.0.0.1:4000 rejected: more than 2 associations at once",
    ]
