from __future__ import annotations

import sqlite3

import pytest

from dicomweb_archive import tags
from dicomweb_archive.model.aggregate import study_sort_key
from dicomweb_archive.model.matching import path_matcher
from dicomweb_archive.store.columns import STUDY_COLUMNS, study_cells, study_conditions


def _element(vr: str, *values: object) -> dict[str, object]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def _name(*groups: str) -> dict[str, str]:
    return dict(zip(("Alphabetic", "Ideographic", "Phonetic"), groups, strict=False))


# Studies with every shape a column meets: one value, none, several, absent.
STUDIES = [
    {
        tags.StudyDate: _element("DA", "20030101"),
        tags.PatientName: _element("PN", _name("Doe^Jane")),
        tags.PatientID: _element("LO", "P1"),
        tags.AccessionNumber: _element("SH", "A1"),
        tags.StudyDescription: _element("LO", "CHEST [PA]"),
        tags.ModalitiesInStudy: _element("CS", "CT", "MR"),
    },
    {
        tags.StudyDate: _element("DA", "20050601"),
        tags.PatientName: _element("PN", _name("DOE^JOHN")),
        tags.PatientID: _element("LO", "P12"),
        tags.AccessionNumber: _element("SH", "A12"),
        tags.StudyDescription: _element("LO", ""),
        tags.ModalitiesInStudy: _element("CS", "MR"),
    },
    {tags.StudyDate: _element("DA", "2005"), tags.PatientID: _element("LO", "p1")},
    {tags.StudyDate: _element("DA"), tags.PatientID: _element("LO")},
    {
        tags.StudyDate: _element("DA", "20040101", "19990101"),
        tags.PatientID: _element("LO", "X", "P1"),
    },
    {},
    {
        tags.StudyDate: _element("DA", "20040202"),
        tags.PatientName: _element("PN", _name("Yamada^Tarou", "山田^太郎")),
    },
    {
        tags.StudyDate: _element("DA", "20040303"),
        tags.PatientName: _element("PN", _name("Straße^Ö")),
        tags.PatientID: _element("LO", "P[1]"),
    },
    {tags.StudyDate: _element("DA", "20040404"), tags.PatientID: _element("LO", "P\x001")},
    {tags.PatientName: _element("PN", _name("Roe^Rick"), _name("Doe^Jane"))},
]
#: Studies 2 (a date of four digits), 4 (several values), 6 (two component
#: groups), 8 (a NUL) and 9 (two names) escape the columns.
IRREGULAR = {2, 4, 6, 8, 9}
QUERIES = {
    tags.StudyDate: ["20030101", "20030101-20050601", "-20040101", "20050101-", "20050601-"],
    tags.PatientName: ["doe^jane", "DOE*", "d?e^j*", "*JOHN", "*^*", "strasse*", "STRASSE^ö"],
    tags.PatientID: ["P1", "P1*", "P?", "*1", "p1", "X", "P12", "Q*", "P[1]", "P[*", "**"],
    tags.AccessionNumber: ["A1", "A1*", "B"],
    tags.StudyDescription: ["CHEST*", "*[PA]", "?*", "chest*"],
    tags.ModalitiesInStudy: ["CT", "MR", "US", "C*", "US,MR", "US\\CT", "XA,US", "US,C*"],
}
VRS = {
    tags.StudyDate: "DA",
    tags.PatientName: "PN",
    tags.PatientID: "LO",
    tags.AccessionNumber: "SH",
    tags.StudyDescription: "LO",
    tags.ModalitiesInStudy: "CS",
}
UIDS = [f"1.2.3.{n}" for n in range(len(STUDIES))]


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    names = ", ".join(column.name for column in STUDY_COLUMNS)
    db.execute(
        f"CREATE TABLE studies (n INTEGER, study TEXT, sort_key TEXT, irregular INTEGER, {names})"
    )
    for n, attributes in enumerate(STUDIES):
        row = {**attributes, tags.StudyInstanceUID: _element("UI", UIDS[n])}
        values, irregular = study_cells(UIDS[n], row, row)
        sort_key = "|".join(study_sort_key(row))
        db.execute(
            f"INSERT INTO studies VALUES (?, ?, ?, ?{', ?' * len(values)})",
            (n, UIDS[n], sort_key, irregular, *values),
        )
    return db


@pytest.mark.parametrize(
    ("tag", "text"), [(tag, text) for tag, texts in QUERIES.items() for text in texts]
)
def test_a_condition_selects_exactly_the_regular_matches(
    db: sqlite3.Connection, tag: str, text: str
) -> None:
    test = path_matcher([tag], VRS[tag], text)
    matching = {n for n, attributes in enumerate(STUDIES) if test(attributes.get(tag))}
    conditions, whole = study_conditions([(tag, VRS[tag], text)])
    if tag == tags.ModalitiesInStudy and "*" in text:
        assert (conditions, whole) == ([], False)  # left to the matcher
        return
    assert whole and len(conditions) == 1
    [condition] = conditions
    sql = f"SELECT n FROM studies WHERE irregular = 0 AND ({condition.sql})"
    assert {n for (n,) in db.execute(sql, condition.args)} == matching - IRREGULAR


def test_a_study_instance_uid_list_is_a_look_up(db: sqlite3.Connection) -> None:
    [condition], whole = study_conditions(
        [(tags.StudyInstanceUID, "UI", "1.2.3.0\\1.2.3.7,1.2.3.2")]
    )
    assert whole and condition.selective
    sql = f"SELECT n FROM studies WHERE irregular = 0 AND ({condition.sql})"
    assert {n for (n,) in db.execute(sql, condition.args)} == {0, 7}


def test_keys_combine_and_universal_ones_do_not_narrow() -> None:
    conditions, whole = study_conditions(
        [
            (tags.StudyDate, "DA", "20030101-"),
            (tags.PatientID, "LO", "*"),
            (tags.PatientName, "PN", "doe*"),
            (tags.ModalitiesInStudy, "CS", ""),
            (tags.AccessionNumber, "SH", "A1"),
        ]
    )
    assert whole and len(conditions) == 3
    assert [arg for c in conditions for arg in c.args] == [
        "20030101",
        ":",
        "doe",
        "doe\U0010ffff",
        "doe*",
        "A1",
    ]
    # A key on another attribute, on a column's tag with another VR, or down a
    # sequence is the matcher's: the search is not SQL's alone.
    for key in [
        (tags.StudyTime, "TM", "1200-"),
        (tags.AccessionNumber, "LO", "A1"),
        (f"{tags.RequestAttributesSequence}.{tags.AccessionNumber}", "SH", "A1"),
    ]:
        assert study_conditions([key]) == ([], False)
    assert study_conditions([]) == ([], True)


def test_the_text_index_is_named_for_a_run_of_three_characters() -> None:
    def text(pattern: str) -> tuple[str, str] | None:
        [condition], _ = study_conditions([(tags.PatientName, "PN", pattern)])
        return condition.text

    assert text("*SMITH*") == ("patient_name", "*smith*")
    assert text("*sm*th*") is None  # no trigram to look up
    assert text("sm*") is None and text("s?i*jo?n*") is None
    assert text("sm*joh*") == ("patient_name", "sm*joh*")
    [modality], _ = study_conditions([(tags.ModalitiesInStudy, "CS", "CT")])
    assert modality.text == ("modalities", "*\\CT\\*")


def test_cells() -> None:
    row = {**STUDIES[0], tags.StudyInstanceUID: _element("UI", "1.2.3.0")}
    values, irregular = study_cells("1.2.3.0", row, row)
    assert values == ["doe^jane", "P1", "A1", "CHEST [PA]", "\\CT\\MR\\"] and not irregular
    assert study_cells("1.2.3.0", {}, {})[1]  # the UID is not the study's
    row = {tags.StudyInstanceUID: _element("UI", "1.2")}
    assert study_cells("1.2", row, row) == ([None, None, None, None, "\\\\"], False)
    # The row's date sorts the study: another in its shared attributes escapes.
    assert study_cells("1.2", row, {**row, tags.StudyDate: _element("DA", "20030101")})[1]
