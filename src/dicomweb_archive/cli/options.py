"""Parameter checks shared by the commands."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dicomweb_archive import uids
from dicomweb_archive.convert.transforms import load_transform
from dicomweb_archive.deidentify.keys import PseudonymKey
from dicomweb_archive.deidentify.profile import Profile
from dicomweb_archive.deidentify.table import OPTIONS
from dicomweb_archive.errors import InvalidInputError
from dicomweb_archive.model.attributes import attribute_tag
from dicomweb_archive.store.manifest import DUPLICATE_POLICIES
from dicomweb_archive.store.url import is_url

F = TypeVar("F", bound=Callable[..., Any])

#: How HTJ2K is stored (``dwa transcode --mode``, ``dwa convert --htj2k``).
HTJ2K_MODES = click.Choice(["alternate", "primary"])
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def byte_size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """A size in bytes: ``1048576``, ``512M``, ``2G`` (binary units); a callback."""
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1:] if text[-1:] in _UNITS else ""
    try:
        size = float(text[: len(text) - len(unit)].strip()) * _UNITS[unit]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a size such as 2G, 512M or 1048576") from None
    if size < 0:
        raise click.BadParameter(f"{value!r} is negative")
    return int(size)


class ArchiveLocation(click.ParamType[str]):
    """An archive: a folder (that must exist when ``exists``) or a store URL (``s3://…``).

    A URL is left to :func:`~dicomweb_archive.store.url.open_store`, which opens
    it or refuses it by name; it is never checked as a local path.
    """

    name = "archive"

    def __init__(self, *, exists: bool = False) -> None:
        self._folder = click.Path(exists=exists, file_okay=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if is_url(os.fspath(value)):
            return os.fspath(value)
        return self._folder.convert(value, param, ctx)


def check_uids(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """Refuse anything but DICOM UIDs: a usage error (exit 2) before any work starts."""
    for value in values:
        if not uids.is_valid_uid(value):
            raise click.BadParameter(f"{value!r} is not a valid UID")
    return values


def check_uid(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """One optional UID, refused as a usage error when it is not one."""
    return check_uids(ctx, param, (value,))[0] if value is not None else None


#: ``--study UID`` (repeatable), into ``studies``.
studies_option = click.option(
    "--study",
    "studies",
    multiple=True,
    metavar="UID",
    callback=check_uids,
    help="A study (repeatable).",
)
#: ``--series UID`` (repeatable), into ``series``.
series_option = click.option(
    "--series",
    "series",
    multiple=True,
    metavar="UID",
    callback=check_uids,
    help="A series (repeatable).",
)
#: ``-w/--workers N``, into ``workers`` (None: all cores).
workers_option = click.option(
    "-w",
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (default: all cores).",
)
#: ``--json``, into ``as_json``.
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON summary on stdout."
)
#: ``-q/--quiet``, into ``quiet``.
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar.")


def parse_qido_fields(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...] | None:
    """``--qido-fields`` (repeatable, comma-separated keywords or tags) as sorted 8-hex
    tags; None when not given, () for an explicitly empty list."""
    if not values:
        return None
    found = set()
    for value in values:
        for name in filter(None, (part.strip() for part in value.split(","))):
            try:
                found.add(attribute_tag(name)[0])
            except InvalidInputError as exc:
                raise click.BadParameter(str(exc)) from None
    return tuple(sorted(found))


#: ``--qido-fields KEYWORD|TAG,…`` (repeatable), into ``qido_fields``.
qido_fields_option = click.option(
    "--qido-fields",
    "qido_fields",
    multiple=True,
    metavar="ATTR,…",
    callback=parse_qido_fields,
    help="Attributes (keywords or 8-hex tags, comma-separated) added to the QIDO-RS "
    "documents and index at every level; recorded in the archive's manifest.",
)


def _profile(ctx: click.Context, param: click.Parameter, value: str | None) -> Profile | None:
    if value is None:
        return None
    try:
        return Profile.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _transforms(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    for spec in values:  # loaded now: a typo is a usage error before any input is read
        try:
            load_transform(spec)
        except InvalidInputError as exc:
            raise click.BadParameter(str(exc)) from None
    return values


def dataset_options(
    profile: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--deidentify``, ``--key``, ``--allow-burned-in``, ``--strip-private``,
    ``--keep-private`` and ``--transform``: what is done to each dataset before it is stored.

    ``profile`` is the default of ``--deidentify`` (none: no de-identification).
    """
    options = [
        click.option(
            "--deidentify",
            metavar="PROFILE",
            default=profile,
            show_default=profile is not None,
            callback=_profile,
            help="De-identify (PS3.15 Annex E): 'basic' or 'basic,OPTION,…'; options: "
            + ", ".join(OPTIONS)
            + ".",
        ),
        click.option(
            "--key",
            "key_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Secret key file of the pseudonyms (UIDs, patient IDs, date shifts); "
            "created when missing. Keep it to de-identify more studies consistently.",
        ),
        click.option(
            "--allow-burned-in",
            is_flag=True,
            help="De-identify images that may show text in their pixels "
            "(Burned In Annotation YES, or not given for US, SC, OT, XA): "
            "the pixels are not cleaned.",
        ),
        click.option("--strip-private", is_flag=True, help="Remove private attributes."),
        click.option(
            "--keep-private",
            multiple=True,
            metavar="CREATOR",
            help="Keep the private attributes of this Private Creator (repeatable; "
            "implies --strip-private for the others).",
        ),
        click.option(
            "--transform",
            "transforms",
            multiple=True,
            metavar="MODULE:FUNCTION|NAME",
            callback=_transforms,
            help="Apply this function to each dataset before it is stored (repeatable; "
            "NAME: an entry point of dicomweb_archive.transforms).",
        ),
    ]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


#: ``--on-duplicate reject|overwrite``, into ``on_duplicate`` (None: the archive's).
on_duplicate_option = click.option(
    "--on-duplicate",
    type=click.Choice(DUPLICATE_POLICIES),
    default=None,
    help="A SOP Instance UID stored again with other content, or under another study "
    "or series: reject it or overwrite the stored instance (default: the manifest's "
    "onDuplicate, else reject).",
)


def target_options(verb: str) -> Callable[[F], F]:
    """``--study UID`` (required), ``--series UID``, ``--instance UID``: what to ``verb``."""
    options = [
        click.option(
            "--study",
            required=True,
            metavar="UID",
            callback=check_uid,
            help=f"The study to {verb}, or the one holding the series.",
        ),
        click.option(
            "--series",
            metavar="UID",
            callback=check_uid,
            help=f"Only this series of the study ({verb} it, or the one holding the instance).",
        ),
        click.option(
            "--instance",
            metavar="UID",
            callback=check_uid,
            help="Only this instance of the series (needs --series).",
        ),
    ]

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def dataset_transforms(
    *,
    deidentify: Profile | None,
    key_file: Path | None,
    allow_burned_in: bool,
    strip_private: bool,
    keep_private: tuple[str, ...],
    transforms: tuple[str, ...],
) -> dict[str, Any]:
    """The :class:`~dicomweb_archive.convert.options.ConvertOptions` fields the options give."""
    if deidentify is None and (key_file is not None or allow_burned_in):
        raise click.UsageError("--key and --allow-burned-in go with --deidentify")
    deidentifier = None
    if deidentify is not None:
        if key_file is None:
            raise click.UsageError("--deidentify needs --key FILE (created when missing)")
        if key_file.exists():
            key = PseudonymKey.read(key_file)
        else:
            key = PseudonymKey.create(key_file)
            click.echo(
                f"created the de-identification key {key_file}: keep it secret, and give it "
                "again to map the same patients and UIDs the same way",
                err=True,
            )
        # Here, not at the top: de-identification works on pydicom's datasets,
        # which a plain conversion never imports.
        from dicomweb_archive.deidentify.deidentifier import Deidentifier

        deidentifier = Deidentifier(
            deidentify, key, allow_burned_in=allow_burned_in, keep_private=frozenset(keep_private)
        )
    private = None
    if strip_private or keep_private:
        from dicomweb_archive.deidentify.private import PrivatePolicy

        private = PrivatePolicy.keeping(keep_private)
    return {"transforms": transforms, "private": private, "deidentify": deidentifier}
