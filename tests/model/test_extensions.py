"""Extension folder and file names: strict, and never able to leave their folder."""

from __future__ import annotations

import pytest

from dicomweb_archive.errors import InvalidInputError, ResourceNotFoundError
from dicomweb_archive.model import extensions
from dicomweb_archive.model.paths import ResourcePath, ResourceType, Suffix
from dicomweb_archive.types import InstanceKey

KEY = InstanceKey("1.2.3", "1.2.3.4", "1.2.3.4.5")
INSTANCE = "studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5"
FOLDER = "_aistartupco_covid19_detection"

#: Names that must never become an extension folder or file: traversal,
#: absolute paths, separators, encodings, control characters, hidden names.
ATTACKS = [
    "",
    ".",
    "..",
    "../x",
    "..\\x",
    "/etc/passwd",
    "\\\\server\\share",
    "x/../../y",
    "x/y",
    "%2e%2e",
    "%2E%2E%2Fmanifest.json",
    "..%2f",
    "%252e%252e",
    "x%00",
    "x\x00y",
    "x\ny",
    "x\ty",
    " x",
    "x ",
    ".hidden",
    "x.",
    "x..y",
    "~x",
    "x:y",
    "C:\\x",
    "\u2024\u2024",  # one dot leaders, which some systems fold into ".."
    "x\u202ey",
    "ｘ",
    "a" * 129,
]


@pytest.mark.parametrize(
    "name", [FOLDER, "_a_b", "_vendor1_result-v2", "_v_x_y_z", "_" + "a" * 32 + "_" + "b" * 64]
)
def test_folder_names(name: str) -> None:
    assert extensions.is_folder_name(name)
    assert extensions.check_folder_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        *ATTACKS,
        "_",
        "__",
        "_a",
        "_a_",
        "_A_b",
        "_a_B",
        "a_b",
        "_a-b_c",  # the vendor has no dash: where the name starts stays clear
        "_a_b-",
        "_a_b_",
        "_" + "a" * 33 + "_b",
        "_a_" + "b" * 65,
        "_a_b/c",
        "_a_b/..",
        "_a_b%2f..",
    ],
)
def test_refused_folder_names(name: str) -> None:
    assert not extensions.is_folder_name(name)
    with pytest.raises(InvalidInputError):
        extensions.check_folder_name(name)


@pytest.mark.parametrize("name", ["result.json", "a", "seg.nii.gz", "report_v1-2.pdf", "A9"])
def test_file_names(name: str) -> None:
    assert extensions.check_file_name(name) == name


@pytest.mark.parametrize("name", ATTACKS)
def test_refused_file_names(name: str) -> None:
    with pytest.raises(InvalidInputError):
        extensions.check_file_name(name)


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("result.json", "application/json"),
        ("HEAT.PNG", "image/png"),
        ("report.pdf", "application/pdf"),
        ("seg.nii", "application/octet-stream"),
        ("seg.nii.gz", "application/gzip"),
        ("x.jpeg", "image/jpeg"),
        ("notes.txt", "text/plain; charset=utf-8"),
        ("page.html", "application/octet-stream"),  # never run by a browser
        ("image.svg", "application/octet-stream"),
        ("script.js", "application/octet-stream"),
        ("noending", "application/octet-stream"),
    ],
)
def test_content_types(name: str, media_type: str) -> None:
    assert extensions.content_type(name) == media_type


@pytest.mark.parametrize(
    ("level", "text"),
    [
        (ResourcePath.study("1.2.3"), "studies/1.2.3"),
        (ResourcePath.series("1.2.3", "1.2.3.4"), "studies/1.2.3/series/1.2.3.4"),
        (ResourcePath.instance(KEY), INSTANCE),
    ],
)
def test_extension_paths_round_trip(level: ResourcePath, text: str) -> None:
    resource = level.extension_path(FOLDER, "result.json")
    assert str(resource) == resource.file == f"{text}/{FOLDER}/result.json"
    assert ResourcePath.from_string(str(resource)) == resource
    assert resource.up(level.type) == level


@pytest.mark.parametrize("name", ATTACKS)
def test_no_path_escapes_through_either_name(name: str) -> None:
    level = ResourcePath.instance(KEY)
    with pytest.raises(InvalidInputError):
        level.extension_path(name, "result.json")
    with pytest.raises(InvalidInputError):
        level.extension_path(FOLDER, name)
    for text in (f"{INSTANCE}/{FOLDER}/{name}", f"{INSTANCE}/_{name}/x"):
        if text.count("/") == INSTANCE.count("/") + 2:
            with pytest.raises((InvalidInputError, ResourceNotFoundError)):
                ResourcePath.from_string(text)


def test_extensions_only_where_a_level_is_named() -> None:
    for resource in (
        ResourcePath(ResourceType.STUDY),
        ResourcePath(ResourceType.SERIES, "1.2.3"),
        ResourcePath.frames(KEY, 1),
    ):
        with pytest.raises(InvalidInputError):
            resource.extension_path(FOLDER, "x.json")
    with pytest.raises(InvalidInputError):
        ResourcePath(ResourceType.STUDY, "1.2.3", suffix=Suffix.METADATA, extension=FOLDER)


def test_study_documents() -> None:
    listed = ResourcePath.from_string("studies/1.2.3/extensions")
    assert listed == ResourcePath.study("1.2.3").with_suffix(Suffix.EXTENSIONS)
    assert listed.file == "studies/1.2.3/extensions.json.gz"
    context = ResourcePath.from_string("studies/1.2.3/bulkdata")
    assert context.file == "studies/1.2.3/bulkdata.json.gz"
    with pytest.raises(InvalidInputError):
        ResourcePath.from_string("studies/1.2.3/series/1.2.3.4/extensions")
