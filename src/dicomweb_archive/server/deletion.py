"""DELETE of a study, a series or an instance (behind the write token).

PS3.18 defines no deletion; archives that offer it (the Azure DICOM service,
dcm4chee) answer ``DELETE`` on the resource's own URL.  Like the Azure service
this one answers 204 No Content once the resource is gone (files, derived
documents, QIDO-RS rows, bulk data no other instance refers to), 404 when it is
not there, 401 without the token.  A deletion is crash-safe: the server's next
start finishes one it was killed in (:mod:`dicomweb_archive.store.removal`).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from dicomweb_archive.model.paths import ResourcePath
from dicomweb_archive.server.context import Context
from dicomweb_archive.store.removal import Target, delete

logger = logging.getLogger(__name__)


def delete_instances(context: Context, request: Request, resource: ResourcePath) -> Response:
    """``DELETE /studies/{st}[/series/{se}[/instances/{sop}]]``, in a worker thread."""
    assert resource.study_instance_uid is not None
    target = Target(
        resource.study_instance_uid, resource.series_instance_uid, resource.sop_instance_uid
    )
    done = delete(context.archive, target)
    logger.info("deleted %s: %d instances", target, len(done.instances))
    return Response(status_code=204)
