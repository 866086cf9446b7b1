from __future__ import annotations

from typing import Any

import pytest

from dicomweb_archive.model.matching import InvalidQueryError, matcher


def pn(*names: str) -> dict[str, Any]:
    return {"vr": "PN", "Value": [{"Alphabetic": n} for n in names]}


def value(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)}


@pytest.mark.parametrize(
    ("vr", "query", "element", "expected"),
    [
        ("PN", "doe^jane", pn("Doe^Jane"), True),
        ("PN", "Do?^*", pn("Doe^Jane"), True),
        ("PN", "*jan*", pn("Doe^Jane"), True),
        ("PN", "Roe*", pn("Doe^Jane"), False),
        ("PN", "", None, True),
        ("PN", "Doe^Jane", None, False),
        ("LO", "PID1", value("LO", "PID1"), True),
        ("LO", "pid1", value("LO", "PID1"), False),
        ("LO", "PID*", value("LO", "PID1"), True),
        ("CS", "MR", value("CS", "CT", "MR"), True),
        ("UI", "1.2\\1.3", value("UI", "1.3"), True),
        ("UI", "1.2,1.4", value("UI", "1.3"), False),
        ("DA", "20240101-", value("DA", "20240102"), True),
        ("DA", "-20231231", value("DA", "20240102"), False),
        ("DA", "20240101-20240131", value("DA", "20240131"), True),
        ("DA", "20240102", value("DA", "20240102"), True),
        ("TM", "1000-1100", value("TM", "103000.5"), True),
        ("TM", "1000-1100", value("TM", "110059"), True),
        ("TM", "1000-1100", value("TM", "1101"), False),
        ("IS", "7", value("IS", 7), True),
        ("DS", "2.5", value("DS", 2.5), True),
    ],
)
def test_matching(vr: str, query: str, element: dict[str, Any] | None, expected: bool) -> None:
    assert matcher(vr, query)(element) is expected


@pytest.mark.parametrize(("vr", "query"), [("DA", "garbage"), ("DA", "2024-13"), ("IS", "x")])
def test_bad_values_are_refused(vr: str, query: str) -> None:
    with pytest.raises(InvalidQueryError):
        matcher(vr, query)
