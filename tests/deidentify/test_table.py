"""Table E.1-1 as shipped, and the action each option choice gives."""

from __future__ import annotations

import json

import pytest

from dicomweb_archive.deidentify import table


def test_the_shipped_table_is_the_standards() -> None:
    document = json.loads(table.TABLE_PATH.read_text())
    assert document["table"].startswith("DICOM PS3.15 Table E.1-1")
    assert "confidentiality_profile_attributes.json" in document["source"]
    assert len(document["sha256"]) == 64
    assert len(table.rows()) > 600
    names = {r.name for r in table.rows()}
    assert {"Patient's Name", "Patient ID", "SOP Instance UID", "Private Attributes"} <= names


def test_every_code_is_known_and_every_option_a_column() -> None:
    codes = {*"XZDKCU", *table.COMBINED}
    for row in table.rows():
        assert row.basic in codes, row
        assert set(row.options) <= set(table.OPTIONS), row
        assert set(row.options.values()) <= {"K", "C"}, row


def test_basic_profile_actions() -> None:
    rules = table.rules(frozenset())
    assert rules.action(0x00100010) == "Z"  # Patient's Name
    assert rules.action(0x00100020) == "D"  # Patient ID: Z/D
    assert rules.action(0x00080018) == "U"  # SOP Instance UID
    assert rules.action(0x00080080) == "D"  # Institution Name: X/Z/D
    assert rules.action(0x00080022) == "Z"  # Acquisition Date: X/Z
    assert rules.action(0x00081140) == "U"  # Referenced Image Sequence: X/Z/U*
    assert rules.action(0x00081030) == "X"  # Study Description
    assert rules.action(0x00080016) is None  # SOP Class UID: not listed, kept
    assert rules.action(0x60023000) == "X"  # Overlay Data (60xx,3000)
    assert rules.action(0x50001234) == "X"  # Curve Data (50xx,xxxx)
    assert rules.private == "X"


@pytest.mark.parametrize(
    ("options", "tag", "action"),
    [
        ({"retain-uids"}, 0x00080018, "K"),
        ({"retain-long-full-dates"}, 0x00080022, "K"),
        ({"retain-long-modified-dates"}, 0x00080022, "C"),
        ({"retain-device-identity"}, 0x00181000, "K"),  # Device Serial Number
        ({"retain-institution-identity"}, 0x00080080, "K"),
        ({"retain-patient-characteristics"}, 0x00101010, "K"),  # Patient's Age
        ({"clean-descriptors"}, 0x00081030, "C"),
        ({"clean-structured-content"}, 0x0040A730, "C"),  # Content Sequence
        ({"clean-graphics"}, 0x00700001, "C"),  # Graphic Annotation Sequence
        ({"retain-patient-characteristics", "clean-descriptors"}, 0x00102110, "C"),  # Allergies
        # Keep wins over clean when both options name an attribute.
        ({"retain-long-full-dates", "retain-long-modified-dates"}, 0x00080012, "K"),
    ],
)
def test_options_change_actions(options: set[str], tag: int, action: str) -> None:
    assert table.rules(frozenset(options)).action(tag) == action


def test_retain_safe_private_cleans_private_attributes() -> None:
    assert table.rules(frozenset({"retain-safe-private"})).private == "C"


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown options: retain-everything"):
        table.rules(frozenset({"retain-everything"}))
