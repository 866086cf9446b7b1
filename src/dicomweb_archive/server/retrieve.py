"""WADO-RS retrieve of whole instances: a study, a series or one instance as P10.

Each instance is regenerated from the archive (``export_instance``) in its
original transfer syntax, or transcoded to Explicit VR Little Endian, and
streamed as one part of ``multipart/related; type="application/dicom"``: only
one instance is in memory at a time.  Whether every instance can be produced in
the wanted transfer syntax is decided before the first byte goes out, so a 406
is a 406 and never a truncated body.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
from dicomweb_archive.server.context import Context
from dicomweb_archive.server.negotiation import accepted, choose_instances
from dicomweb_archive.store.archive import Archive
from dicomweb_archive.types import JSONDataset, first_value


@dataclass(frozen=True)
class Planned:
    """One instance to send, and the transfer syntax it goes out in."""

    study: str
    series: str
    sop: str
    meta: JSONDataset
    transfer_syntax: str
    source_syntax: str

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


def plan(archive: Archive, metadata_path: str, wanted: str) -> list[Planned]:
    """The instances under ``metadata_path`` in the wanted transfer syntax, or 406."""
    planned = []
    for meta in _instances(archive, metadata_path):
        study = str(first_value(meta, tags.StudyInstanceUID))
        series = str(first_value(meta, tags.SeriesInstanceUID))
        sop = str(first_value(meta, tags.SOPInstanceUID))
        info = archive.read_json_gz(paths.instance_info(study, series, sop))
        source = str(info["transferSyntaxUID"])
        if not can_transcode(meta, source, wanted):
            raise UnsupportedTransferSyntaxError(
                f"instance {sop} is stored in {source} and cannot be sent in {wanted}"
            )
        target = source if wanted == "*" else wanted
        planned.append(Planned(study, series, sop, meta, target, source))
    return planned


def _p10(archive: Archive, item: Planned, transforms: ConvertOptions | None) -> bytes:
    data = item.p10(archive)
    return data if transforms is None else transformed_p10(data, item.sop, transforms)[0]


def _parts(
    archive: Archive, planned: list[Planned], transforms: ConvertOptions | None
) -> Iterator[bytes]:
    for item in planned:
        content_type = multipart.content_type(DICOM, item.transfer_syntax)
        yield multipart.header(content_type) + _p10(archive, item, transforms) + b"\r\n"
    yield f"--{multipart.BOUNDARY}--\r\n".encode("ascii")


def _zip(
    archive: Archive,
    planned: list[Planned],
    resource: ResourcePath,
    transforms: ConvertOptions | None,
) -> Response:
    """A ZIP of P10 files, streamed: names by patient, study, series, instance."""
    uids: tuple[str | None, ...] = (
        resource.study_instance_uid,
        resource.series_instance_uid,
        resource.sop_instance_uid,
    )
    if transforms is not None:
        members = _transformed_members(archive, planned, transforms)
        if transforms.deidentify is not None:
            uids = tuple(transforms.deidentify.uid(uid) if uid else uid for uid in uids)
    else:
        namer = Namer()
        names: dict[str, str] = {}
        for study in dict.fromkeys(item.study for item in planned):
            for exported in plan_study(archive, study, None, namer):
                names[exported.sop_instance_uid] = exported.name
        members = (ZipMember.from_bytes(names[item.sop], item.p10(archive)) for item in planned)
    filename = "_".join(safe_name(uid) for uid in uids if uid)
    return StreamingResponse(
        zip_stream(members),
        media_type=ZIP,
        headers={"Content-Disposition": f'attachment; filename="{filename}.zip"'},
    )


def _transformed_members(
    archive: Archive, planned: list[Planned], transforms: ConvertOptions
) -> Iterator[ZipMember]:
    """Each file transformed, named from what it became."""
    namer = Namer()
    for item in planned:
        data, meta = transformed_p10(item.p10(archive), item.sop, transforms)
        yield ZipMember.from_bytes(name_instance(namer, meta).name, data)


def retrieve_study(context: Context, request: Request, resource: ResourcePath) -> Response:
    return _retrieve(context, request, resource)


def retrieve_series(context: Context, request: Request, resource: ResourcePath) -> Response:
    return _retrieve(context, request, resource)


def retrieve_instance(context: Context, request: Request, resource: ResourcePath) -> Response:
    return _retrieve(context, request, resource)


def _retrieve(context: Context, request: Request, resource: ResourcePath) -> Response:
    """Answer a study, series or instance retrieve (in a worker thread)."""
    archive = context.archive
    single_instance = resource.type is ResourceType.INSTANCE
    rendition = choose_instances(accepted(request), single_instance=single_instance)
    transforms = deidentify.requested(context, request)
    planned = plan(archive, resource.metadata().file, rendition.transfer_syntax)
    if transforms is not None:
        deidentify.check_burned_in(transforms, (item.meta for item in planned))
    if rendition.form == "zip":
        return _zip(archive, planned, resource, transforms)
    if rendition.form == "single":
        [item] = planned
        return Response(_p10(archive, item, transforms), media_type=DICOM)
    # A sync iterator: Starlette runs each step in a worker thread.
    return StreamingResponse(
        _parts(archive, planned, transforms),
        media_type=multipart.response_content_type(DICOM),
    )
