"""Custom transforms, private attributes and de-identification on the way into the archive."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.convert.transforms import ENTRY_POINT_GROUP, load_transform
from dicomweb_archive.deidentify.deidentifier import Deidentifier
from dicomweb_archive.deidentify.keys import PseudonymKey
from dicomweb_archive.deidentify.private import PrivatePolicy
from dicomweb_archive.deidentify.profile import Profile
from dicomweb_archive.errors import InvalidInputError
from dicomweb_archive.model import paths
from tests.conftest import MakeInstance

HERE = "tests.convert.test_transforms"


def rename_station(ds: Dataset) -> None:
    """A transform that changes the dataset in place."""
    ds.StationName = "RENAMED"


def replace_dataset(ds: Dataset) -> Dataset:
    """A transform that returns another dataset to store."""
    other = Dataset()
    other.update(ds)
    other.StationName = "REPLACED"
    return other


def fail_on_second(ds: Dataset) -> None:
    if ds.InstanceNumber == 2:
        raise ValueError("instance 2 is not wanted")


def _metadata(archive: Path, study: str, series: str, sop: str) -> Dataset:
    raw = gzip.decompress((archive / paths.instance_metadata(study, series, sop)).read_bytes())
    return Dataset.from_json(orjson.loads(raw)[0])


def _only_instance(archive: Path) -> tuple[str, str, str]:
    [meta] = (archive / "studies").glob("*/series/*/instances/*/metadata.gz")
    parts = meta.relative_to(archive).parts
    return parts[1], parts[3], parts[5]


@pytest.mark.parametrize(
    ("hook", "value"), [("rename_station", "RENAMED"), ("replace_dataset", "REPLACED")]
)
def test_a_custom_transform_changes_what_is_stored(
    tmp_path: Path, make_instance: MakeInstance, hook: str, value: str
) -> None:
    source = make_instance(study=generate_uid(), series=generate_uid())
    options = ConvertOptions(workers=1, transforms=(f"{HERE}:{hook}",))
    result = Converter(tmp_path / "archive", options).convert([str(source)])
    assert result.ok
    assert (
        _metadata(tmp_path / "archive", *_only_instance(tmp_path / "archive")).StationName == value
    )


def test_a_failing_transform_fails_its_input_only(
    tmp_path: Path, make_instance: MakeInstance
) -> None:
    study, series = generate_uid(), generate_uid()
    sources = [str(make_instance(study=study, series=series, instance_number=n)) for n in (1, 2, 3)]
    options = ConvertOptions(workers=1, transforms=(f"{HERE}:fail_on_second",))
    result = Converter(tmp_path / "archive", options).convert(sources)
    assert result.counts["converted"] == 2 and result.counts["failed"] == 1
    [failure] = result.failures
    assert failure.name == sources[1]
    assert failure.reason == (
        f"transform {HERE}:fail_on_second failed: ValueError: instance 2 is not wanted"
    )


def test_transforms_by_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "site" / "hooks_pkg-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hooks-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nrename-station = {HERE}:rename_station\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    load_transform.cache_clear()
    try:
        assert load_transform("rename-station") is rename_station
        with pytest.raises(InvalidInputError, match="installed: rename-station"):
            load_transform("no-such-hook")
    finally:
        load_transform.cache_clear()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_here:f", "cannot be loaded"),
        (f"{HERE}:missing", "cannot be loaded"),
        (f"{HERE}:HERE", "str is not callable"),
    ],
)
def test_bad_transform_names(spec: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        load_transform(spec)


@pytest.fixture
def with_private(make_instance: MakeInstance) -> Iterator[Path]:
    yield make_instance(study=generate_uid(), series=generate_uid(), private_bytes=100)


@pytest.mark.parametrize(("keep", "kept"), [((), False), (("DWA TEST",), True)])
def test_strip_and_keep_private(
    tmp_path: Path, with_private: Path, keep: tuple[str, ...], kept: bool
) -> None:
    options = ConvertOptions(workers=1, private=PrivatePolicy.keeping(keep))
    assert Converter(tmp_path / "archive", options).convert([str(with_private)]).ok
    meta = _metadata(tmp_path / "archive", *_only_instance(tmp_path / "archive"))
    assert any(t.group == 0x11 for t in list(meta.keys())) == kept


def test_deidentified_instances_are_filed_under_their_new_uids(
    tmp_path: Path, with_private: Path
) -> None:
    key = PseudonymKey(b"k" * 32)
    options = ConvertOptions(workers=1, deidentify=Deidentifier(Profile.parse("basic"), key))
    result = Converter(tmp_path / "archive", options).convert([str(with_private)])
    assert result.ok
    study, series, sop = _only_instance(tmp_path / "archive")
    meta = _metadata(tmp_path / "archive", study, series, sop)
    assert (study, series, sop) == (
        meta.StudyInstanceUID,
        meta.SeriesInstanceUID,
        meta.SOPInstanceUID,
    )
    assert sop.startswith("2.25.") and meta.PatientIdentityRemoved == "YES"
    assert not any(t.group % 2 for t in list(meta.keys()))
    info = orjson.loads(
        gzip.decompress(
            (tmp_path / "archive" / paths.instance_info(study, series, sop)).read_bytes()
        )
    )
    assert info["source"]["name"] is None and info["preamble"] is None
    assert info["fileMeta"]["00020003"]["Value"] == [sop]
