"""De-identified retrieves: ``?deidentify=PROFILE`` on a study, series or instance retrieve.

``GET /studies/{st}?accept=application/zip&deidentify=basic,retain-long-modified-dates``
answers the P10 files de-identified as ``dwa convert --deidentify`` would, with
the key ``dwa serve --deidentify-key FILE`` was given (no key, no
de-identification: 400).  Images whose pixels may show text (Burned In
Annotation) are refused before the first byte unless ``allowBurnedIn=true``.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request

from dicomweb_archive import tags
from dicomweb_archive.convert.options import ConvertOptions
from dicomweb_archive.deidentify.deidentifier import Deidentifier, burned_in_reason
from dicomweb_archive.deidentify.profile import Profile
from dicomweb_archive.errors import BurnedInAnnotationError, MalformedRequestError
from dicomweb_archive.server.context import Context
from dicomweb_archive.types import JSONDataset, first_value

PARAMETER = "deidentify"
ALLOW_BURNED_IN = "allowBurnedIn"


def requested(context: Context, request: Request) -> ConvertOptions | None:
    """The de-identification a retrieve asks for; None when it asks for none."""
    text = request.query_params.get(PARAMETER)
    if text is None:
        return None
    if context.deidentify_key is None:
        raise MalformedRequestError(
            f"{PARAMETER}: this server has no de-identification key "
            "(dwa serve --deidentify-key FILE)"
        )
    try:
        profile = Profile.parse(text)
    except ValueError as exc:
        raise MalformedRequestError(f"{PARAMETER}: {exc}") from None
    allow = request.query_params.get(ALLOW_BURNED_IN, "false").lower()
    if allow not in ("true", "false"):
        raise MalformedRequestError(f"{ALLOW_BURNED_IN}: true or false, not {allow!r}")
    deidentifier = Deidentifier(profile, context.deidentify_key, allow_burned_in=allow == "true")
    return ConvertOptions(workers=1, deidentify=deidentifier)


def check_burned_in(options: ConvertOptions, instances: Iterable[JSONDataset]) -> None:
    """Refuse the whole answer, before it starts, if one image may show text."""
    if options.deidentify is None or options.deidentify.allow_burned_in:
        return
    for meta in instances:
        if tags.PixelData not in meta:
            continue
        reason = burned_in_reason(
            str(first_value(meta, tags.BurnedInAnnotation, "")),
            str(first_value(meta, tags.Modality, "")),
        )
        if reason is not None:
            sop = first_value(meta, tags.SOPInstanceUID)
            raise BurnedInAnnotationError(
                f"instance {sop}: {reason} ({ALLOW_BURNED_IN}=true to send it anyway)"
            )


def validator(options: ConvertOptions | None) -> str:
    """What of a de-identification changes the files, for an answer's ``ETag``: the
    profile, whether burned-in images go, and a digest of the key (never the key)."""
    if options is None or options.deidentify is None:
        return ""
    deidentifier = options.deidentify
    key = deidentifier.key.digest("validator", "retrieve").hex()[:32]
    allowed = "allowed" if deidentifier.allow_burned_in else "refused"
    return f"deidentify={deidentifier.profile.name};burned-in={allowed};key={key}"
