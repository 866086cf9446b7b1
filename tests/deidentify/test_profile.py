"""Profiles as --deidentify names them, with their CID 7050 codes."""

from __future__ import annotations

import pytest

from dicomweb_archive.deidentify.profile import Profile


def test_basic_alone() -> None:
    profile = Profile.parse("basic")
    assert profile.options == frozenset()
    assert [c.value for c in profile.codes()] == ["113100"]
    assert profile.codes()[0].scheme == "DCM"
    assert profile.method() == ["dicomweb-archive", "Basic Application Confidentiality Profile"]


def test_options_in_the_tables_order_with_their_codes() -> None:
    profile = Profile.parse(" Basic , clean-descriptors,retain-uids,retain-long-modified-dates ")
    assert profile.name == "basic,retain-uids,retain-long-modified-dates,clean-descriptors"
    assert [c.value for c in profile.codes()] == ["113100", "113110", "113107", "113105"]
    assert profile.shifts_dates and not profile.keeps_dates
    assert all(len(v) <= 64 for v in profile.method())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "starts with 'basic'"),
        ("retain-uids", "starts with 'basic'"),
        ("basic,keep-all", "unknown option 'keep-all'; options: retain-safe-private"),
        (
            "basic,retain-long-full-dates,retain-long-modified-dates",
            "exclude each other",
        ),
    ],
)
def test_bad_profiles(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Profile.parse(text)
