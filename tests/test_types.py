"""The shared vocabulary: first values, instance keys, byte ranges."""

from __future__ import annotations

import pytest

from dicomweb_archive import tags
from dicomweb_archive.types import ByteRange, InstanceKey, first_value


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ({"vr": "UI", "Value": ["1.2.3", "1.2.4"]}, "1.2.3"),
        ({"vr": "US", "Value": [0]}, 0),
        ({"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}, {"Alphabetic": "Doe^Jane"}),
        ({"vr": "LO", "Value": []}, None),
        ({"vr": "LO"}, None),
        ({"vr": "OB", "BulkDataURI": "bulkdata/1"}, None),
        ("not an element", None),
        (None, None),
    ],
)
def test_first_value(element: object, expected: object) -> None:
    ds = {tags.PatientID: element}
    assert first_value(ds, tags.PatientID) == expected


def test_first_value_of_a_missing_element() -> None:
    assert first_value({}, tags.PatientID) is None


def test_first_value_default() -> None:
    assert first_value({}, tags.Rows, 1) == 1
    assert first_value({tags.Rows: {"vr": "US", "Value": []}}, tags.Rows, 1) == 1
    assert first_value({tags.Rows: {"vr": "US", "Value": "512"}}, tags.Rows, 1) == 1
    assert first_value({tags.Rows: {"vr": "US", "Value": [0]}}, tags.Rows, 1) == 0


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ({"vr": "US", "Value": [0]}, 0),  # a falsy value is a value
        ({"vr": "US", "Value": [None]}, None),  # an empty value is not missing
        ({"vr": "US", "Value": []}, 1),
        ({"vr": "US"}, 1),
        ({"vr": "US", "Value": "1"}, 1),  # not a list of values
        ("not an element", 1),
    ],
)
def test_first_value_with_a_default(element: object, expected: object) -> None:
    ds = {tags.SamplesPerPixel: element}
    assert first_value(ds, tags.SamplesPerPixel, 1) == expected
    assert first_value({}, tags.SamplesPerPixel, 1) == 1


def test_instance_key_names_spreads_and_prints() -> None:
    key = InstanceKey("1.2", "1.2.3", "1.2.3.4")
    assert key.study_instance_uid == "1.2"
    assert key.series_instance_uid == "1.2.3"
    assert key.sop_instance_uid == "1.2.3.4"
    study, series, sop = key
    assert (study, series, sop) == ("1.2", "1.2.3", "1.2.3.4")
    assert str(key) == "1.2/1.2.3/1.2.3.4"
    assert key == ("1.2", "1.2.3", "1.2.3.4")
    assert len({key, InstanceKey(*key)}) == 1


@pytest.mark.parametrize(("start", "end", "length"), [(0, 10, 10), (5, 6, 1), (7, 7, 0)])
def test_byte_range_is_half_open(start: int, end: int, length: int) -> None:
    byte_range = ByteRange(start, end)
    assert byte_range.length == length
    assert byte_range == (start, end)
    assert (byte_range.start, byte_range.end) == (start, end)
