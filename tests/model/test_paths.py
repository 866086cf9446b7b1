from __future__ import annotations

import pytest

from dicomweb_archive.errors import InvalidInputError, InvalidUIDError, ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.model.paths import ResourcePath, ResourceType, Suffix
from dicomweb_archive.types import InstanceKey

KEY = InstanceKey("1.2.3", "1.2.3.4", "1.2.3.4.5")
DIGEST = "ab" + "0123456789abcdef" * 3 + "0123456789abcd"
INSTANCE = "studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5"

#: Every legal path shape, and the ResourcePath it parses to.
SHAPES = [
    ("studies", ResourcePath(ResourceType.STUDY)),
    ("series", ResourcePath(ResourceType.SERIES)),
    ("instances", ResourcePath(ResourceType.INSTANCE)),
    ("studies/1.2.3", ResourcePath.study("1.2.3")),
    ("studies/1.2.3/series", ResourcePath(ResourceType.SERIES, "1.2.3")),
    ("studies/1.2.3/instances", ResourcePath(ResourceType.INSTANCE, "1.2.3")),
    ("studies/1.2.3/metadata", ResourcePath.study("1.2.3").metadata()),
    ("studies/1.2.3/rendered", ResourcePath.study("1.2.3").with_suffix(Suffix.RENDERED)),
    ("studies/1.2.3/series/1.2.3.4", ResourcePath.series("1.2.3", "1.2.3.4")),
    ("studies/1.2.3/series/1.2.3.4/instances", ResourcePath(ResourceType.INSTANCE, *KEY[:2])),
    ("studies/1.2.3/series/1.2.3.4/metadata", ResourcePath.series(*KEY[:2]).metadata()),
    (
        "studies/1.2.3/series/1.2.3.4/thumbnail",
        ResourcePath.series(*KEY[:2]).with_suffix(Suffix.THUMBNAIL),
    ),
    (INSTANCE, ResourcePath.instance(KEY)),
    (f"{INSTANCE}/metadata", ResourcePath.instance(KEY).metadata()),
    (f"{INSTANCE}/frames/1", ResourcePath.frames(KEY, 1)),
    (f"{INSTANCE}/frames/1,3,2", ResourcePath.frames(KEY, 1, 3, 2)),
    (f"{INSTANCE}/frames/2/rendered", ResourcePath.frames(KEY, 2).with_suffix(Suffix.RENDERED)),
    (f"{INSTANCE}/htj2k/1", ResourcePath.frames(KEY, 1, frames_path="htj2k")),
    (f"{INSTANCE}/jlsthumbnail/4", ResourcePath.frames(KEY, 4, frames_path="jlsthumbnail")),
    (f"studies/1.2.3/bulkdata/ab/{DIGEST[2:]}", ResourcePath.bulkdata("1.2.3", DIGEST)),
]


@pytest.mark.parametrize(("text", "resource"), SHAPES)
def test_build_and_parse_round_trip(text: str, resource: ResourcePath) -> None:
    assert str(resource) == text
    assert ResourcePath.from_string(text) == resource
    assert ResourcePath.from_string(f"/{text}/") == resource


def test_archive_files() -> None:
    assert ResourcePath.frames(KEY, 3).file == f"{INSTANCE}/frames/3"
    assert ResourcePath.instance(KEY).metadata().file == f"{INSTANCE}/metadata.gz"
    assert ResourcePath(ResourceType.STUDY).file == "studies/index.json.gz" == paths.STUDIES_INDEX
    assert paths.series_index("1.2.3") == "studies/1.2.3/series/index.json.gz"
    # The study list's pages: no DICOMweb resource names them ("pages" is no UID).
    assert paths.study_list_page(2) == "studies/pages/2.json.gz"
    with pytest.raises(InvalidUIDError):
        ResourcePath.from_string("studies/pages")
    assert paths.instances_index(*KEY[:2]) == "studies/1.2.3/series/1.2.3.4/instances/index.json.gz"
    # Built without a ResourcePath, named as one names them, UIDs checked alike.
    assert paths.study_dir("1.2.3") == ResourcePath.study("1.2.3").file
    assert paths.series_index("1.2.3") == ResourcePath(ResourceType.SERIES, "1.2.3").file
    assert paths.instances_index(*KEY[:2]) == ResourcePath(ResourceType.INSTANCE, *KEY[:2]).file
    for bad in (("1.2.3/..", "1.2"), ("1.2", "../1"), ("", "1.2"), ("1.2", "")):
        with pytest.raises(InvalidUIDError):
            paths.instances_index(*bad)
    with pytest.raises(InvalidUIDError):
        paths.series_index("..")
    assert paths.htj2k_frame_path(*KEY, 2) == f"{INSTANCE}/htj2k/2"
    # An instance's files, from its folder's path (its UIDs checked once).
    assert paths.instance_dir(*KEY) == ResourcePath.instance(KEY).file == INSTANCE
    assert paths.series_dir(*KEY[:2]) == ResourcePath.series(*KEY[:2]).file
    for bad in (("1.2/..", "1.2", "1.3"), ("1.2", "..", "1.3"), ("1.2", "1.3", "../x")):
        with pytest.raises(InvalidUIDError):
            paths.instance_dir(*bad)
    assert paths.frame_path(*KEY, 3) == ResourcePath.frames(KEY, 3).file
    assert paths.instance_metadata(*KEY) == ResourcePath.instance(KEY).metadata().file
    assert paths.instance_info(*KEY) == ResourcePath.instance(KEY).instance_file(paths.INFO)
    with pytest.raises(InvalidUIDError):
        paths.instance_metadata("1.2", "1.2/../x", "1.2.3")
    assert paths.bulkdata_path("1.2.3", DIGEST) == f"studies/1.2.3/{paths.bulkdata_uri(DIGEST)}"
    assert paths.study_zip("1.2.3") == "studies/1.2.3.zip"
    with pytest.raises(ValueError, match="rendered"):
        _ = ResourcePath.study("1.2.3").with_suffix(Suffix.RENDERED).file
    with pytest.raises(ValueError, match="on its own"):
        _ = ResourcePath.frames(KEY, 1, 2).file


def test_navigation() -> None:
    frame = ResourcePath.frames(KEY, 1)
    assert frame.key == KEY
    assert frame.up(ResourceType.SERIES) == ResourcePath.series(*KEY[:2])
    assert frame.up(ResourceType.STUDY) == ResourcePath.study(KEY[0])
    with pytest.raises(ValueError, match="no instance"):
        _ = ResourcePath.study("1.2").key


@pytest.mark.parametrize(
    "text",
    [
        "studies/..",
        "studies/../series",
        "studies/1.2/series/%2E%2E",
        "studies/1.2/series/1.3/instances/a.b",
        "studies/1..2",
        "studies/1.2./metadata",
        "studies//series",
        "studies/" + "1" * 65,
    ],
)
def test_bad_uids_are_rejected(text: str) -> None:
    with pytest.raises(InvalidUIDError):
        ResourcePath.from_string(text)


@pytest.mark.parametrize("value", ["../x", "1.2/3", "", "1.2 "])
def test_bad_uids_are_rejected_when_building(value: str) -> None:
    with pytest.raises(InvalidUIDError):
        ResourcePath.study(value)
    with pytest.raises(InvalidUIDError):
        ResourcePath.frames(("1.2", "1.3", value), 1)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "patients",
        "studies/1.2/patients",
        "studies/1.2/series/1.3/studies",
        f"{INSTANCE}/pixels/1",
        f"{INSTANCE}/htj2k/1/rendered",
        f"{INSTANCE}/frames/1/metadata",
        f"{INSTANCE}/frames/1/x/y",
        "studies/1.2/bulkdata/ab/cd",
        "studies/1.2/bulkdata/AB/" + "C" * 62,
        "studies/1.2/series/1.3/bulkdata/ab/" + "c" * 62,
    ],
)
def test_unknown_paths_are_not_found(text: str) -> None:
    with pytest.raises(ResourceNotFoundError):
        ResourcePath.from_string(text)


@pytest.mark.parametrize("frames", ["0", "1,x", "-1", "1,,2"])
def test_bad_frame_lists_are_invalid(frames: str) -> None:
    with pytest.raises(InvalidInputError):
        ResourcePath.from_string(f"{INSTANCE}/frames/{frames}")


def test_inconsistent_paths_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        ResourcePath(ResourceType.SERIES, None, "1.2")  # a series without its study
    with pytest.raises(InvalidInputError):
        ResourcePath(ResourceType.FRAMES, "1.2", "1.3", frame_numbers=(1,))
    with pytest.raises(InvalidInputError):
        ResourcePath(ResourceType.SERIES, "1.2", suffix=Suffix.METADATA)  # a collection
    with pytest.raises(InvalidInputError):
        ResourcePath.bulkdata("1.2", DIGEST).with_suffix(Suffix.RENDERED)
