"""Route patterns: families of resource paths as Starlette path templates.

A :class:`Pattern` is what one row of the server's route table matches:
``studies/{study}/series/{series}/metadata``, say.  Its :meth:`~Pattern.resolve`
turns the template's parameters back into a validated
:class:`~dicomweb_archive.model.paths.ResourcePath`, so a route and the path it
names can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from dicomweb_archive.model.paths import (
    FRAMES,
    ResourcePath,
    ResourceType,
    Suffix,
    parse_frame_numbers,
)

#: The name of the path convertor matching extension folder names only
#: (:data:`~dicomweb_archive.model.extensions.FOLDER_PATTERN`); the server registers it.
EXTENSION_CONVERTOR: Final = "extension"
#: The template parameter naming each level's UID.
_PARAMETERS: Final = (
    (ResourceType.STUDY, "study"),
    (ResourceType.SERIES, "series"),
    (ResourceType.INSTANCE, "instance"),
)


@dataclass(frozen=True)
class Pattern:
    """A family of request paths: what one route matches, as a path template.

    ``depth`` is how many UIDs its paths name (fewer than the type's for a
    collection); ``alternate`` matches any ``framesPath`` name in place of
    ``frames``; ``extension`` matches a file of an extension folder, whose name
    the ``extension`` convertor (:data:`EXTENSION_CONVERTOR`) only matches when
    it is one.  :meth:`resolve` turns the template's parameters back into a
    validated :class:`ResourcePath`.
    """

    type: ResourceType
    suffix: Suffix | None = None
    depth: int | None = None
    alternate: bool = False
    extension: bool = False

    @classmethod
    def of(cls, resource: ResourcePath) -> Pattern:
        """The pattern whose template ``resource`` fills."""
        uids = sum(
            uid is not None
            for uid in (
                resource.study_instance_uid,
                resource.series_instance_uid,
                resource.sop_instance_uid,
            )
        )
        return cls(
            resource.type,
            resource.suffix,
            uids if resource.is_collection else None,
            resource.frames_path != FRAMES,
            resource.extension is not None,
        )

    @property
    def template(self) -> str:
        """The path with ``{study}``, ``{series}``, ``{instance}``… placeholders."""
        depth = self.type.depth if self.depth is None else self.depth
        named = _PARAMETERS[:depth]
        segments = [part for level, name in named for part in (level.segment, f"{{{name}}}")]
        if depth < self.type.depth:
            segments.append(self.type.segment)
        elif self.type is ResourceType.FRAMES:
            segments += ["{frames_path}" if self.alternate else FRAMES, "{frames}"]
        elif self.type is ResourceType.BULKDATA:
            segments += ["bulkdata", "{prefix}", "{rest}"]
        elif self.extension:
            segments += [f"{{extension:{EXTENSION_CONVERTOR}}}", "{extension_file}"]
        if self.suffix is not None:
            segments.append(self.suffix.value)
        return "/".join(segments)

    def resolve(self, params: Mapping[str, str]) -> ResourcePath:
        """The resource a request matching :attr:`template` names."""
        study = params.get("study")
        series = params.get("series")
        if self.type is ResourceType.FRAMES:
            return ResourcePath(
                self.type,
                study,
                series,
                params["instance"],
                frame_numbers=parse_frame_numbers(params["frames"]),
                suffix=self.suffix,
                frames_path=params.get("frames_path", FRAMES).lower(),
            )
        if self.type is ResourceType.BULKDATA:
            return ResourcePath(self.type, study, digest=params["prefix"] + params["rest"])
        return ResourcePath(
            self.type,
            study,
            series,
            params.get("instance"),
            suffix=self.suffix,
            extension=params.get("extension"),
            extension_file=params.get("extension_file"),
        )
