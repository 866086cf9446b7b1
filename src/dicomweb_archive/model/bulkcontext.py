"""Where each bulk data value of a study is used: its instances and tag paths.

Bulk data is content-addressed (``bulkdata/{ab}/{cdef…}``), so one stored value
may stand for several elements of several instances; the value itself says
nothing of them.  This module derives, from the instances' metadata, the
study's ``bulkdata`` document: for each BulkDataURI, every use with its series,
instance, VR and *tag path*, the element's tag preceded by each enclosing
sequence's tag and zero-based item index, joined by ``/``
(``00540016/0/00181072``: Radiopharmaceutical Start DateTime in the first item of
Radiopharmaceutical Information Sequence).  Pure functions, no IO.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from dicomweb_archive import tags
from dicomweb_archive.types import JSONDataset, first_value

FORMAT = "dicomweb-archive/bulkdata"
VERSION = 1
#: BulkDataURIs of content-addressed values start so (those of frames do not).
BULKDATA_PREFIX = "bulkdata/"


def bulkdata_uses(dataset: JSONDataset, prefix: str = "") -> Iterator[tuple[str, str, str]]:
    """(BulkDataURI, tag path, VR) of every bulk data value in ``dataset``, nested ones too."""
    for tag, element in dataset.items():
        uri = element.get("BulkDataURI")
        if isinstance(uri, str) and uri.startswith(BULKDATA_PREFIX):
            yield uri, f"{prefix}{tag}", str(element.get("vr", ""))
        if element.get("vr") == "SQ":
            for number, item in enumerate(element.get("Value") or ()):
                if isinstance(item, dict):
                    yield from bulkdata_uses(item, f"{prefix}{tag}/{number}/")


def bulkdata_document(study: str, by_series: Mapping[str, list[JSONDataset]]) -> dict[str, Any]:
    """The study's ``bulkdata`` document; its ``bulkdata`` is empty when none is used.

    Keys are the BulkDataURIs as stored (relative to the study's URL), sorted;
    each use names ``seriesInstanceUID``, ``sopInstanceUID``, ``tagPath`` and ``vr``.
    """
    return document_of_uses(
        study,
        (
            (series, str(first_value(dataset, tags.SOPInstanceUID) or ""), bulkdata_uses(dataset))
            for series, instances in by_series.items()
            for dataset in instances
        ),
    )


def document_of_uses(
    study: str, instances: Iterable[tuple[str, str, Iterable[tuple[str, str, str]]]]
) -> dict[str, Any]:
    """:func:`bulkdata_document` from each instance's series, SOP Instance UID
    and :func:`bulkdata_uses` (found once per instance, kept between refreshes)."""
    uses: dict[str, list[dict[str, str]]] = {}
    for series, sop, found in instances:
        for uri, path, vr in found:
            uses.setdefault(uri, []).append(
                {"seriesInstanceUID": series, "sopInstanceUID": sop, "tagPath": path, "vr": vr}
            )
    ordered = {
        uri: sorted(
            found, key=lambda use: (use["seriesInstanceUID"], use["sopInstanceUID"], use["tagPath"])
        )
        for uri, found in sorted(uses.items())
    }
    return {"format": FORMAT, "version": VERSION, "studyInstanceUID": study, "bulkdata": ordered}
