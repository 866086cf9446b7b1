"""Where each DICOMweb resource lives: one path for the URL and the archive file.

Every path is relative to the service root, which is also the archive root:
``studies/{study}/series/{series}/instances/{instance}/frames/{n}`` is both the
URL and the file.  :class:`ResourcePath` is the one place that knows this
layout; it builds archive paths and parses request paths.  The legal shapes::

    studies                                         search for studies, store
    series | instances                              search the whole archive
    studies/{study}                                 a study (retrieve, store)
    studies/{study}/series | …/instances            search within a study
    studies/{study}/series/{series}                 a series
    studies/{study}/series/{series}/instances       search within a series
    studies/{study}/series/{series}/instances/{instance}
    …/instances/{instance}/frames/{1,2,…}           frames (one-based)
    …/instances/{instance}/{framesPath}/{1,2,…}     alternate frames (htj2k, jls…)
    studies/{study}/bulkdata/{ab}/{cdef…}           content-addressed bulk data
    {study | series | instance}/metadata
    {study | series | instance | frames}/rendered | /thumbnail
    {study | series | instance}/_{vendor}_{name}/{file}    an extension folder's file
    studies/{study}/extensions                      the study's extension folders, listed
    studies/{study}/bulkdata                        where each bulk data value is used

A path naming fewer UIDs than its level (``studies/{study}/series``) is a
*collection*: what QIDO-RS searches and STOW-RS stores into.  JSON documents
are stored gzipped: :attr:`ResourcePath.file` adds ``.gz`` to a metadata path
and ``/index.json.gz`` to a collection (its stored QIDO-RS answer).  Every UID
is validated on construction, so no path built here leaves the archive.
"""

from __future__ import annotations

import enum
from dataclasses import KW_ONLY, dataclass, replace
from functools import cached_property, lru_cache
from typing import Final

from dicomweb_archive.errors import InvalidInputError, InvalidUIDError, ResourceNotFoundError
from dicomweb_archive.model import extensions
from dicomweb_archive.numerals import parse_unsigned
from dicomweb_archive.types import InstanceKey
from dicomweb_archive.uids import is_valid_uid

MANIFEST: Final = "manifest.json"
#: Private working area (locks, temporary files); never served.
WORK_DIR: Final = ".dwa"

METADATA: Final = "metadata.gz"
INFO: Final = "info.json.gz"
INDEX: Final = "index.json.gz"
DEDUPLICATED: Final = "deduplicated.json.gz"
#: Folder of an instance's HTJ2K alternate frames, beside ``frames``.
HTJ2K: Final = "htj2k"
FRAMES: Final = "frames"
#: ``framesPath`` names viewers use for alternate renditions of frames
#: (client-contract §6), matched case-insensitively.
#: Frames one request may list (client-contract §6); more answer 400.
MAX_FRAMES_PER_REQUEST: Final = 256
ALTERNATE_FRAMES_PATHS: Final = frozenset({HTJ2K, "lossy", "jls", "htj2kthumbnail", "jlsthumbnail"})
#: Length of the SHA-256 digest naming a bulk data value, in hex digits.
_DIGEST_LENGTH: Final = 64
_HEX: Final = frozenset("0123456789abcdef")


class ResourceType(enum.Enum):
    """The level of a resource; ``depth`` is how many UIDs name one of it."""

    STUDY = ("studies", 1)
    SERIES = ("series", 2)
    INSTANCE = ("instances", 3)
    FRAMES = (FRAMES, 3)
    BULKDATA = ("bulkdata", 1)

    def __init__(self, segment: str, depth: int) -> None:
        self.segment = segment
        self.depth = depth


class Suffix(enum.Enum):
    """What a path asks for of its resource, beyond the resource itself."""

    METADATA = "metadata"
    RENDERED = "rendered"
    THUMBNAIL = "thumbnail"
    #: Every frame of an instance: the BulkDataURI of its Pixel Data.
    PIXEL_DATA = "frames"
    #: The study's extension folders (``extensions.json.gz``).
    EXTENSIONS = "extensions"
    #: The study's bulk data values with the instances and tag paths using them.
    BULKDATA = "bulkdata"


_LEVELS: Final = (ResourceType.STUDY, ResourceType.SERIES, ResourceType.INSTANCE)
_BY_SEGMENT: Final = {t.segment: t for t in _LEVELS}
_PREFIXES: Final = ("studies", "series", "instances")
_SUFFIX_NAMES: Final = frozenset(s.value for s in Suffix)
_FRAME_SUFFIXES: Final = frozenset({Suffix.RENDERED.value, Suffix.THUMBNAIL.value})
#: Which suffixes each type takes.
#: Study documents of the archive's own, stored as ``{path}.json.gz``.
_STUDY_DOCUMENTS: Final = frozenset({Suffix.EXTENSIONS, Suffix.BULKDATA})
_SUFFIXES: Final = {
    ResourceType.STUDY: frozenset(Suffix) - {Suffix.PIXEL_DATA},
    ResourceType.SERIES: frozenset(Suffix) - {Suffix.PIXEL_DATA} - _STUDY_DOCUMENTS,
    ResourceType.INSTANCE: frozenset(Suffix) - _STUDY_DOCUMENTS,
    ResourceType.FRAMES: frozenset(map(Suffix, _FRAME_SUFFIXES)),
    ResourceType.BULKDATA: frozenset(),
}


def _uid(value: str) -> str:
    if not is_valid_uid(value):
        raise InvalidUIDError(f"{value!r} is not a valid UID")
    return value


def parse_frame_numbers(text: str) -> tuple[int, ...]:
    """One-based frame numbers of a ``1,2,3`` list."""
    try:
        numbers = tuple(parse_unsigned(n) for n in text.split(","))
    except ValueError as exc:
        raise InvalidInputError(f"frame list {text!r} is not a list of numbers") from exc
    _check_frame_list(numbers)
    return numbers


def _check_frame_list(numbers: tuple[int, ...]) -> None:
    """A frame list names each frame once, at most :data:`MAX_FRAMES_PER_REQUEST` of them.

    A list repeating one frame would make a response of any size from a short
    URL; PS3.18 lists frames, it does not repeat them.
    """
    if not numbers or min(numbers) < 1:
        raise InvalidInputError("frame numbers start at 1")
    seen: set[int] = set()
    for number in numbers:
        if number in seen:
            raise InvalidInputError(f"frame {number} is listed more than once")
        seen.add(number)
    if len(numbers) > MAX_FRAMES_PER_REQUEST:
        raise InvalidInputError(
            f"a frame list names at most {MAX_FRAMES_PER_REQUEST} frames, not {len(numbers)}"
        )


@dataclass(frozen=True)
class ResourcePath:
    """An immutable, validated path of one resource (or collection) of an archive."""

    type: ResourceType
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    _: KW_ONLY
    #: One-based frame numbers of a FRAMES path.
    frame_numbers: tuple[int, ...] = ()
    suffix: Suffix | None = None
    #: The segment before the frame numbers: ``frames``, or an alternate name.
    frames_path: str = FRAMES
    #: The SHA-256 hex digest naming a BULKDATA value.
    digest: str | None = None
    #: An extension folder ``_{vendor}_{name}`` of a study, series or instance,
    #: and the file in it.
    extension: str | None = None
    extension_file: str | None = None

    def __post_init__(self) -> None:
        named = self._uids()
        if None in named:
            raise InvalidInputError(f"a {self.type.name.lower()} path names its parents' UIDs")
        for value in named:
            _uid(str(value))
        if self.type.depth > len(named) and self.type not in _LEVELS:
            raise InvalidInputError(f"a {self.type.name.lower()} path names every UID above it")
        if self.suffix is not None and (
            self.is_collection or self.suffix not in _SUFFIXES[self.type]
        ):
            raise InvalidInputError(f"{self.type.name.lower()} paths have no {self.suffix.value}")
        if self.type is ResourceType.FRAMES:
            _check_frame_list(self.frame_numbers)
            if self.frames_path != FRAMES and self.frames_path not in ALTERNATE_FRAMES_PATHS:
                raise ResourceNotFoundError(f"no frames path {self.frames_path!r}")
        if self.type is ResourceType.BULKDATA and not _is_digest(self.digest):
            raise ResourceNotFoundError("no such bulk data")
        if self.extension is not None or self.extension_file is not None:
            self._check_extension()

    def _check_extension(self) -> None:
        if self.type not in _LEVELS or self.is_collection or self.suffix is not None:
            raise InvalidInputError("extension folders are in a study, series or instance")
        extensions.check_folder_name(str(self.extension))
        extensions.check_file_name(str(self.extension_file))

    def _uids(self) -> tuple[str | None, ...]:
        """The UIDs up to the last one named, outermost first."""
        if self.sop_instance_uid is not None:
            return (self.study_instance_uid, self.series_instance_uid, self.sop_instance_uid)
        if self.series_instance_uid is not None:
            return (self.study_instance_uid, self.series_instance_uid)
        return () if self.study_instance_uid is None else (self.study_instance_uid,)

    # -- construction ------------------------------------------------------------

    @classmethod
    def study(cls, study_instance_uid: str) -> ResourcePath:
        return cls(ResourceType.STUDY, study_instance_uid)

    @classmethod
    def series(cls, study_instance_uid: str, series_instance_uid: str) -> ResourcePath:
        return cls(ResourceType.SERIES, study_instance_uid, series_instance_uid)

    @classmethod
    def instance(cls, key: InstanceKey | tuple[str, str, str]) -> ResourcePath:
        return cls(ResourceType.INSTANCE, *key)

    @classmethod
    def frames(
        cls, key: InstanceKey | tuple[str, str, str], *numbers: int, frames_path: str = FRAMES
    ) -> ResourcePath:
        return cls(ResourceType.FRAMES, *key, frame_numbers=numbers, frames_path=frames_path)

    @classmethod
    def bulkdata(cls, study_instance_uid: str, digest: str) -> ResourcePath:
        return cls(ResourceType.BULKDATA, study_instance_uid, digest=digest)

    def extension_path(self, folder: str, name: str) -> ResourcePath:
        """The file ``name`` of the extension folder ``folder`` of this study, series
        or instance; both names are checked (see :mod:`~dicomweb_archive.model.extensions`)."""
        return replace(self, suffix=None, extension=folder, extension_file=name)

    @classmethod
    def from_string(cls, text: str) -> ResourcePath:
        """Parse a path relative to the service root (see the module docstring)."""
        segments = text.strip("/").split("/")
        if len(segments) == 1 and segments[0] in _BY_SEGMENT:
            return cls(_BY_SEGMENT[segments[0]])
        if segments[0] != "studies":
            raise ResourceNotFoundError(f"no resource {text}")
        uids: list[str] = []
        for level, child in zip(_LEVELS, (*_LEVELS[1:], None), strict=True):
            if len(segments) <= 2 * len(uids) + 1:
                break
            uids.append(_uid(segments[2 * len(uids) + 1]))
            rest = segments[2 * len(uids) :]
            if not rest:
                return cls(level, *uids)
            if (
                len(rest) == 1
                and rest[0] in _BY_SEGMENT
                and _BY_SEGMENT[rest[0]] in _LEVELS[len(uids) :]
            ):
                return cls(_BY_SEGMENT[rest[0]], *uids)  # a collection: …/series, …/instances
            if len(rest) == 1 and rest[0] in _SUFFIX_NAMES:
                return cls(level, *uids, suffix=Suffix(rest[0]))
            if len(rest) == 2 and rest[0].startswith("_"):
                return cls(level, *uids, extension=rest[0], extension_file=rest[1])
            if level is ResourceType.STUDY and len(rest) == 3 and rest[0] == "bulkdata":
                return cls.bulkdata(uids[0], rest[1] + rest[2])
            if level is ResourceType.INSTANCE and len(rest) in (2, 3):
                return cls._frames(uids, rest)
            if child is None or rest[0] != child.segment:
                break
        raise ResourceNotFoundError(f"no resource {text}")

    @classmethod
    def _frames(cls, uids: list[str], rest: list[str]) -> ResourcePath:
        """``{framesPath}/{numbers}``, and maybe ``/rendered`` after ``frames/…``."""
        name = rest[0].lower()
        suffix = Suffix(rest[2]) if len(rest) == 3 and rest[2] in _FRAME_SUFFIXES else None
        if len(rest) == 3 and (suffix is None or name != FRAMES):
            raise ResourceNotFoundError(f"no resource {'/'.join(rest)}")
        numbers = parse_frame_numbers(rest[1])
        return cls(
            ResourceType.FRAMES, *uids, frame_numbers=numbers, suffix=suffix, frames_path=name
        )

    # -- what it names -------------------------------------------------------------

    @property
    def is_collection(self) -> bool:
        """Whether the path names a collection (QIDO-RS, STOW-RS) rather than one resource."""
        return len(self._uids()) < self.type.depth

    @property
    def key(self) -> InstanceKey:
        """The instance a path at instance level or below names."""
        if self.sop_instance_uid is None:
            raise ValueError(f"{self} names no instance")
        assert self.study_instance_uid and self.series_instance_uid
        return InstanceKey(self.study_instance_uid, self.series_instance_uid, self.sop_instance_uid)

    def __str__(self) -> str:
        return self._text

    @cached_property
    def _prefix(self) -> str:
        """``studies/{study}/series/{series}/…/`` for the UIDs named."""
        return "".join(f"{s}/{uid}/" for s, uid in zip(_PREFIXES, self._uids(), strict=False))

    @cached_property
    def _text(self) -> str:
        uids = self._uids()
        text = self._prefix
        if len(uids) < self.type.depth:
            text += self.type.segment
        elif self.type is ResourceType.FRAMES:
            text += f"{self.frames_path}/{','.join(map(str, self.frame_numbers))}"
        elif self.type is ResourceType.BULKDATA:
            assert self.digest
            text += f"bulkdata/{self.digest[:2]}/{self.digest[2:]}"
        elif self.extension is not None:
            text += f"{self.extension}/{self.extension_file}"
        else:
            text = text[:-1]
        return text if self.suffix is None else f"{text}/{self.suffix.value}"

    @property
    def file(self) -> str:
        """The archive file (or folder) holding the resource's stored representation.

        A metadata document gains ``.gz``, the study's ``extensions`` and
        ``bulkdata`` documents ``.json.gz``, a collection its stored search answer
        ``index.json.gz``; a study, series or instance is its folder; a frame, bulk
        data and an extension folder's file are stored under their own path.
        """
        if self.suffix is Suffix.METADATA:
            return f"{self}.gz"
        if self.suffix in _STUDY_DOCUMENTS:
            return f"{self}.json.gz"
        if self.suffix is not None:
            raise ValueError(f"{self} is rendered, never stored")
        if self.is_collection:
            return f"{self}/{INDEX}"
        if self.type is ResourceType.FRAMES and len(self.frame_numbers) != 1:
            raise ValueError(f"{self}: each frame is stored on its own")
        return str(self)

    def instance_file(self, name: str) -> str:
        """A file of the instance this path names or is below: ``info.json.gz``, ``frames/2``…

        Built from the UIDs already validated, so as cheap as the frame path
        of a request must be.
        """
        if self.sop_instance_uid is None:
            raise ValueError(f"{self} names no instance")
        return self._prefix + name

    def frame_file(self, number: int, frames_path: str = FRAMES) -> str:
        """The archive file of frame ``number`` (or of its alternate ``frames_path``)."""
        return self.instance_file(f"{frames_path}/{number}")

    # -- navigation ----------------------------------------------------------------

    def up(self, level: ResourceType) -> ResourcePath:
        """The enclosing study, series or instance."""
        uids = self._uids()[: level.depth]
        return ResourcePath(level, *uids)

    def with_suffix(self, suffix: Suffix | None) -> ResourcePath:
        return replace(self, suffix=suffix)

    def metadata(self) -> ResourcePath:
        return self.with_suffix(Suffix.METADATA)


def _is_digest(value: str | None) -> bool:
    return value is not None and len(value) == _DIGEST_LENGTH and set(value) <= _HEX


# Archive files by name, for the writers and readers of the archive.


# The folders and documents below are each study's and series' as their
# ResourcePath's ``file`` names them, built from the UIDs checked alone: a
# rebuild of the index asks for every study's, where a ResourcePath costs ten
# times as much.


@lru_cache(maxsize=4096)  # asked for by every read of a served study
def study_dir(study: str) -> str:
    return f"{_PREFIXES[0]}/{_uid(study)}"


def study_zip(study: str) -> str:
    """A packed study: one ZIP whose entries are the study's paths.

    A study is either a folder ``studies/{study}/`` or this file; when both
    exist (a pack or an unpack under way), the ZIP is the study.
    """
    return f"{study_dir(study)}.zip"


@lru_cache(maxsize=4096)
def series_dir(study: str, series: str) -> str:
    return f"{study_dir(study)}/{_PREFIXES[1]}/{_uid(series)}"


@lru_cache(maxsize=4096)  # every file of an instance written or read starts with it
def instance_dir(study: str, series: str, instance: str) -> str:
    return f"{series_dir(study, series)}/{_PREFIXES[2]}/{_uid(instance)}"


def frame_path(study: str, series: str, instance: str, number: int) -> str:
    return f"{instance_dir(study, series, instance)}/{FRAMES}/{number}"


def htj2k_dir(study: str, series: str, instance: str) -> str:
    """The instance's HTJ2K alternate frames (the ``framesPath`` ``/htj2k/``)."""
    return f"{instance_dir(study, series, instance)}/{HTJ2K}"


def htj2k_frame_path(study: str, series: str, instance: str, number: int) -> str:
    """Frame ``number`` of the HTJ2K alternate, stored like ``frames/{n}``."""
    return f"{instance_dir(study, series, instance)}/{HTJ2K}/{number}"


def bulkdata_uri(digest: str) -> str:
    """The BulkDataURI of a content-addressed value, relative to its study.

    ``bulkdata/…`` resolves against the study URL in OHIF whatever its
    ``relativeResolution`` setting (client-contract §7).
    """
    return f"bulkdata/{digest[:2]}/{digest[2:]}"


def bulkdata_path(study: str, digest: str) -> str:
    return ResourcePath.bulkdata(study, digest).file


def pixel_data_uri(series: str, instance: str) -> str:
    """The BulkDataURI of an instance's Pixel Data: its frames resource, below its study."""
    return f"series/{series}/instances/{instance}/{FRAMES}"


def study_metadata(study: str) -> str:
    return ResourcePath.study(study).metadata().file


def series_metadata(study: str, series: str) -> str:
    return ResourcePath.series(study, series).metadata().file


def instance_metadata(study: str, series: str, instance: str) -> str:
    return f"{instance_dir(study, series, instance)}/{METADATA}"


def instance_info(study: str, series: str, instance: str) -> str:
    return f"{instance_dir(study, series, instance)}/{INFO}"


def study_row(study: str) -> str:
    """QIDO row of one study (``/studies?StudyInstanceUID=…``)."""
    return f"{study_dir(study)}/{INDEX}"


#: QIDO ``/studies``: every study's row (the newest ones in a large archive,
#: :mod:`dicomweb_archive.store.listing`).
STUDIES_INDEX: Final = ResourcePath(ResourceType.STUDY).file
#: The study list's pages (not a DICOMweb resource: "pages" is no UID).
STUDY_LIST_PAGES: Final = "studies/pages"


def study_list_page(page: int) -> str:
    """Page ``page`` of the archive's study list."""
    return f"{STUDY_LIST_PAGES}/{page}.json.gz"


def series_index(study: str) -> str:
    """QIDO ``/studies/{study}/series``."""
    return f"{study_dir(study)}/{_PREFIXES[1]}/{INDEX}"


def instances_index(study: str, series: str) -> str:
    """QIDO ``/studies/{study}/series/{series}/instances``."""
    return f"{study_dir(study)}/{_PREFIXES[1]}/{_uid(series)}/{_PREFIXES[2]}/{INDEX}"


def deduplicated(study: str) -> str:
    return f"{study_dir(study)}/{DEDUPLICATED}"


def study_extensions(study: str) -> str:
    """The study's extension folders listed (``/studies/{study}/extensions``)."""
    return ResourcePath.study(study).with_suffix(Suffix.EXTENSIONS).file


def bulkdata_context(study: str) -> str:
    """The instances and tag paths of each bulk data value (``/studies/{study}/bulkdata``)."""
    return ResourcePath.study(study).with_suffix(Suffix.BULKDATA).file
