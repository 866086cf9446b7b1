"""The answer to a STOW-RS request: the Store Instances Response Module (PS3.18 10.5.3).

DICOM JSON, with 200 when every instance was stored, 202 when some failed and
409 when none was; each failed part's reason in words in a ``Warning`` header.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.responses import Response

from dicomweb_archive import tags
from dicomweb_archive.media import DICOM_JSON
from dicomweb_archive.model.paths import ResourcePath
from dicomweb_archive.server.stow.parts import Outcome
from dicomweb_archive.types import InstanceKey

logger = logging.getLogger(__name__)

#: Most failure reasons put in ``Warning`` headers.
_MAX_WARNINGS = 20


def store_response(root: str, study: str | None, outcomes: list[Outcome]) -> Response:
    """The answer of a STOW-RS request; ``root`` is the service root's URL."""
    stored = [o for o in outcomes if o.failure is None]
    failed = [o for o in outcomes if o.failure is not None]
    body = response_dataset(root, study, stored, failed)
    status = 200 if not failed else 202 if stored else 409
    headers = {}
    if failed:
        headers["Warning"] = ", ".join(_warning_text(o) for o in failed[:_MAX_WARNINGS])
    logger.info("STOW-RS: %d stored, %d failed", len(stored), len(failed))
    return Response(
        orjson.dumps(body, option=orjson.OPT_SORT_KEYS),
        status_code=status,
        media_type=DICOM_JSON,
        headers=headers,
    )


def _warning_text(outcome: Outcome) -> str:
    text = f"part {outcome.number}: {outcome.reason}"
    text = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)[:300]
    return f'299 dicomweb-archive "{text}"'


def _key(outcome: Outcome) -> InstanceKey:
    assert outcome.study_instance_uid and outcome.series_instance_uid
    assert outcome.sop_instance_uid
    return InstanceKey(
        outcome.study_instance_uid, outcome.series_instance_uid, outcome.sop_instance_uid
    )


def _uid_element(value: str | None) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def _referenced(outcome: Outcome) -> dict[str, Any]:
    """The Referenced SOP Class and Instance UIDs of an item of either sequence."""
    return {
        tags.ReferencedSOPClassUID: _uid_element(outcome.sop_class_uid),
        tags.ReferencedSOPInstanceUID: _uid_element(outcome.sop_instance_uid),
    }


def response_dataset(
    root: str, study: str | None, stored: list[Outcome], failed: list[Outcome]
) -> dict[str, Any]:
    """The Store Instances Response Module of one request (PS3.18 10.5.3)."""
    dataset: dict[str, Any] = {}
    studies = {o.study_instance_uid for o in stored}
    target = study or (next(iter(studies)) if len(studies) == 1 else None)
    if target:
        dataset[tags.RetrieveURL] = {"vr": "UR", "Value": [f"{root}/{ResourcePath.study(target)}"]}
    if stored:
        dataset[tags.ReferencedSOPSequence] = {
            "vr": "SQ",
            "Value": [
                {
                    **_referenced(o),
                    tags.RetrieveURL: {
                        "vr": "UR",
                        "Value": [f"{root}/{ResourcePath.instance(_key(o))}"],
                    },
                }
                for o in stored
            ],
        }
    if failed:
        dataset[tags.FailedSOPSequence] = {
            "vr": "SQ",
            "Value": [
                {
                    **_referenced(o),
                    tags.FailureReason: {"vr": "US", "Value": [o.failure]},
                }
                for o in failed
            ],
        }
    return dataset
