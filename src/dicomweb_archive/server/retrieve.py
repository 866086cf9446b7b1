"""WADO-RS retrieve of whole instances: a study, a series or one instance as P10.

Each instance is regenerated from the archive (``export_instance``) in its
original transfer syntax, or transcoded to Explicit VR Little Endian, and
streamed as one part of ``multipart/related; type="application/dicom"``: only
one instance is in memory at a time.  Whether every instance can be produced in
the wanted transfer syntax is decided before the first byte goes out, so a 406
is a 406 and never a truncated body.

The answer's validators come from the stored files it is made from, measured
before any P10 file is made (:mod:`.inputs`): a strong ``ETag``, a
``Last-Modified``, the preconditions of :mod:`.conditions` (304, 412) and a
``HEAD`` that make no P10 file.  A multipart or ZIP answer is streamed as it
is made, its length unknown: ``Accept-Ranges: none``.  A single instance
(``application/dicom``) is made whole, and has byte ranges.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from dicomweb_archive import tags
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.errors import UnsupportedTransferSyntaxError
from dicomweb_archive.export.bundle import Namer, name_instance, plan_study, safe_name
from dicomweb_archive.export.p10 import export_instance
from dicomweb_archive.export.transcode import can_transcode, to_explicit_little_endian
from dicomweb_archive.export.zipstream import ZipMember, zip_stream
from dicomweb_archive.media import DICOM, ZIP
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.model.instance import instance_sort_key
from dicomweb_archive.model.paths import ResourcePath, ResourceType
from dicomweb_archive.rewrite.transformed import transformed_p10
from dicomweb_archive.server import deidentify
from dicomweb_archive.server.conditions import http_date, last_modified, precondition
from dicomweb_archive.server.context import Context
from dicomweb_archive.server.inputs import Inputs
from dicomweb_archive.server.joined import ChangedWhileSent
from dicomweb_archive.server.negotiation import InstanceRendition, accepted, choose_instances
from dicomweb_archive.server.responses import RangeResponse, representation_tag
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.types import JSONDataset, first_value

#: Times a single instance is made again when a file it is made from changed meanwhile.
_ATTEMPTS = 3


@dataclass(frozen=True)
class Planned:
    """One instance to send, and the transfer syntax it goes out in."""

    study: str
    series: str
    sop: str
    meta: JSONDataset
    transfer_syntax: str
    source_syntax: str
    #: The stored files its P10 file is made from (bulk data aside: named by
    #: its content in the metadata).
    inputs: tuple[str, ...] = field(default=(), compare=False)

    def p10(self, archive: Archive) -> bytes:
        if self.transfer_syntax == self.source_syntax:
            return export_instance(archive, self.study, self.series, self.sop)
        return to_explicit_little_endian(archive, self.study, self.series, self.sop, self.meta)


def _instances(archive: Archive, metadata_path: str) -> list[JSONDataset]:
    documents: list[JSONDataset] = archive.read_json_gz(metadata_path)
    return sorted(
        documents,
        key=lambda ds: (str(first_value(ds, tags.SeriesInstanceUID) or ""), *instance_sort_key(ds)),
    )


def _frame_count(info: JSONDataset) -> int:
    pixel = info.get("pixelData") or {}
    return int(pixel.get("numberOfFrames") or 0)


def plan(
    archive: Archive, metadata_path: str, wanted: str, inputs: Inputs | None = None
) -> list[Planned]:
    """The instances under ``metadata_path`` in the wanted transfer syntax, or 406.

    With ``inputs``, every stored file the answer is made from is measured
    there before it is read (and the listing checked once read).
    """
    if inputs is None:
        inputs = Inputs(archive)
    inputs.measure(metadata_path)
    listed = _instances(archive, metadata_path)
    inputs.check([metadata_path])
    planned = []
    for meta in listed:
        study = str(first_value(meta, tags.StudyInstanceUID))
        series = str(first_value(meta, tags.SeriesInstanceUID))
        sop = str(first_value(meta, tags.SOPInstanceUID))
        folder = paths.instance_dir(study, series, sop)
        info_path = paths.instance_info(study, series, sop)
        stored = [paths.instance_metadata(study, series, sop), info_path]
        inputs.measure_folder(folder, stored)
        info = archive.read_json_gz(info_path)
        frames = range(1, _frame_count(info) + 1)
        stored += [paths.frame_path(study, series, sop, number) for number in frames]
        inputs.measure_folder(folder, stored)
        source = str(info["transferSyntaxUID"])
        if not can_transcode(meta, source, wanted):
            raise UnsupportedTransferSyntaxError(
                f"instance {sop} is stored in {source} and cannot be sent in {wanted}"
            )
        target = source if wanted == "*" else wanted
        planned.append(Planned(study, series, sop, meta, target, source, tuple(stored)))
    return planned


def _p10(
    archive: Archive, item: Planned, transforms: ConvertOptions | None, inputs: Inputs
) -> tuple[bytes, JSONDataset | None]:
    """The instance's file as sent (and its metadata when transformed), its
    stored files checked once read."""
    data = item.p10(archive)
    inputs.check_folder(paths.instance_dir(item.study, item.series, item.sop), item.inputs)
    if transforms is None:
        return data, None
    return transformed_p10(data, item.sop, transforms)


def _parts(
    archive: Archive, planned: list[Planned], transforms: ConvertOptions | None, inputs: Inputs
) -> Iterator[bytes]:
    for item in planned:
        content_type = multipart.content_type(DICOM, item.transfer_syntax)
        yield multipart.header(content_type) + _p10(archive, item, transforms, inputs)[0] + b"\r\n"
    yield f"--{multipart.BOUNDARY}--\r\n".encode("ascii")


def _naming_documents(planned: list[Planned]) -> list[str]:
    """The QIDO documents that name a ZIP's files (see ``plan_study``)."""
    found: list[str] = []
    for study in dict.fromkeys(item.study for item in planned):
        found += [paths.study_row(study), paths.series_index(study)]
        series = dict.fromkeys(item.series for item in planned if item.study == study)
        found += [paths.instances_index(study, uid) for uid in series]
    return found


def _names(archive: Archive, planned: list[Planned], inputs: Inputs) -> dict[str, str]:
    """The ZIP's file names by SOP Instance UID, from the archive's documents
    (patient, study, series and instance), checked once read."""
    namer = Namer()
    names: dict[str, str] = {}
    for study in dict.fromkeys(item.study for item in planned):
        for exported in plan_study(archive, study, None, namer):
            names[exported.sop_instance_uid] = exported.name
    inputs.check(_naming_documents(planned))
    return names


def _members(
    archive: Archive,
    planned: list[Planned],
    transforms: ConvertOptions | None,
    inputs: Inputs,
    names: dict[str, str],
) -> Iterator[ZipMember]:
    """The ZIP's files: named by ``names``, or, transformed, from what each file became."""
    namer = Namer()
    for item in planned:
        data, meta = _p10(archive, item, transforms, inputs)
        name = names[item.sop] if meta is None else name_instance(namer, meta).name
        yield ZipMember.from_bytes(name, data)


def _zip_filename(resource: ResourcePath, transforms: ConvertOptions | None) -> str:
    uids: tuple[str | None, ...] = (
        resource.study_instance_uid,
        resource.series_instance_uid,
        resource.sop_instance_uid,
    )
    if transforms is not None and transforms.deidentify is not None:
        uids = tuple(transforms.deidentify.uid(uid) if uid else uid for uid in uids)
    return "_".join(safe_name(uid) for uid in uids if uid) + ".zip"


def retrieve_study(context: Context, request: Request, resource: ResourcePath) -> Response:
    return _retrieve(context, request, resource)


def retrieve_series(context: Context, request: Request, resource: ResourcePath) -> Response:
    return _retrieve(context, request, resource)


def retrieve_instance(context: Context, request: Request, resource: ResourcePath) -> Response:
    return _retrieve(context, request, resource)


def _retrieve(context: Context, request: Request, resource: ResourcePath) -> Response:
    """Answer a study, series or instance retrieve (in a worker thread)."""
    single_instance = resource.type is ResourceType.INSTANCE
    rendition = choose_instances(accepted(request), single_instance=single_instance)
    transforms = deidentify.requested(context, request)
    for _ in range(_ATTEMPTS - 1):
        # A file found changed before the first byte (the listing, the names,
        # a single instance once made whole): the answer is made again.
        with contextlib.suppress(ChangedWhileSent):
            return _answer(context, request, resource, rendition, transforms)
    return _answer(context, request, resource, rendition, transforms)


def _answer(
    context: Context,
    request: Request,
    resource: ResourcePath,
    rendition: InstanceRendition,
    transforms: ConvertOptions | None,
) -> Response:
    archive = context.archive
    inputs = Inputs(archive)
    planned = plan(archive, resource.metadata().file, rendition.transfer_syntax, inputs)
    if transforms is not None:
        deidentify.check_burned_in(transforms, (item.meta for item in planned))
    # The answer's headers: its validators, from the measured files alone.
    headers = {"Vary": "Accept"}
    if rendition.form == "zip":
        media_type = ZIP
        if transforms is None:
            inputs.measure(*_naming_documents(planned))
        filename = _zip_filename(resource, transforms)
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    elif rendition.form == "single":
        media_type = DICOM
    else:
        media_type = multipart.response_content_type(DICOM)
    validator = inputs.tag(
        "retrieve", rendition.form, rendition.transfer_syntax, deidentify.validator(transforms)
    )
    etag = representation_tag(validator, media_type)
    modified = last_modified(inputs.newest)
    if modified is not None:
        headers["Last-Modified"] = http_date(modified)
    headers["Accept-Ranges"] = "bytes" if rendition.form == "single" else "none"
    status = precondition(request, etag, modified)
    if status is not None or request.method == "HEAD":
        return _without_body(status or 200, media_type, {"ETag": etag, **headers})
    if rendition.form == "zip":
        names = _names(archive, planned, inputs) if transforms is None else {}
        members = _members(archive, planned, transforms, inputs, names)
        return StreamingResponse(
            zip_stream(members), media_type=ZIP, headers={"ETag": etag, **headers}
        )
    if rendition.form == "single":
        [item] = planned
        data = _p10(archive, item, transforms, inputs)[0]
        return RangeResponse(request, data, DICOM, headers=headers, etag=validator)
    # A sync iterator: Starlette runs each step in a worker thread.
    return StreamingResponse(
        _parts(archive, planned, transforms, inputs),
        media_type=media_type,
        headers={"ETag": etag, **headers},
    )


def _without_body(status: int, media_type: str, headers: dict[str, str]) -> Response:
    """A 304 or 412, or the head of a 200 answering ``HEAD``: its headers, no P10 file made.

    A ``HEAD`` has no ``Content-Length``: the ``GET`` streams a body whose
    length is known once made (RFC 9110 9.3.2).
    """
    response = Response(status_code=status, media_type=media_type, headers=headers)
    dropped = b"content-length" if status == 200 else b"content-type"
    response.raw_headers = [(k, v) for k, v in response.raw_headers if k != dropped]
    return response
