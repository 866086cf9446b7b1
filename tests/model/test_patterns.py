"""Route patterns: templates that match exactly the paths they resolve to."""

from __future__ import annotations

import pytest
from starlette.routing import compile_path

from dicomweb_archive.model.paths import ResourcePath, ResourceType
from dicomweb_archive.model.patterns import Pattern
from tests.model.test_paths import INSTANCE, KEY, SHAPES


@pytest.mark.parametrize(("text", "resource"), SHAPES)
def test_route_patterns_resolve_what_they_match(text: str, resource: ResourcePath) -> None:
    regex, _, convertors = compile_path("/" + Pattern.of(resource).template)
    match = regex.match("/" + text)
    assert match is not None
    assert Pattern.of(resource).resolve(match.groupdict()) == resource


def test_alternate_frames_paths_are_case_insensitive() -> None:
    parsed = ResourcePath.from_string(f"{INSTANCE}/htj2kThumbnail/1")
    assert parsed.frames_path == "htj2kthumbnail"
    assert Pattern(ResourceType.FRAMES, alternate=True).resolve(
        {"study": KEY[0], "series": KEY[1], "instance": KEY[2], "frames": "1", "frames_path": "JLS"}
    ) == ResourcePath.frames(KEY, 1, frames_path="jls")


def test_templates_of_the_route_table() -> None:
    assert Pattern(ResourceType.STUDY, depth=0).template == "studies"
    assert Pattern(ResourceType.INSTANCE, depth=1).template == "studies/{study}/instances"
    assert Pattern(ResourceType.BULKDATA).template == "studies/{study}/bulkdata/{prefix}/{rest}"
    alternate = Pattern(ResourceType.FRAMES, alternate=True).template
    assert (
        alternate == "studies/{study}/series/{series}/instances/{instance}/{frames_path}/{frames}"
    )
    assert ResourcePath.from_string(f"{INSTANCE}/frames/1").key == KEY
