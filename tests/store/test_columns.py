from __future__ import annotations

import sqlite3

import pytest

from dicomweb_archive import tags
from dicomweb_archive.model.aggregate import study_sort_key
from dicomweb_archive.model.matching import matcher
from dicomweb_archive.store.columns import STUDY_COLUMNS, is_irregular, study_conditions


def _element(vr: str, *values: object) -> dict[str, object]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


# Studies with every shape a column meets: one value, none, several, absent.
STUDIES = [
    {
        tags.StudyDate: _element("DA", "20030101"),
        tags.PatientID: _element("LO", "P1"),
        tags.AccessionNumber: _element("SH", "A1"),
        tags.ModalitiesInStudy: _element("CS", "CT", "MR"),
    },
    {
        tags.StudyDate: _element("DA", "20050601"),
        tags.PatientID: _element("LO", "P12"),
        tags.AccessionNumber: _element("SH", "A12"),
        tags.ModalitiesInStudy: _element("CS", "MR"),
    },
    {tags.StudyDate: _element("DA", "2005"), tags.PatientID: _element("LO", "p1")},
    {tags.StudyDate: _element("DA"), tags.PatientID: _element("LO")},
    {
        tags.StudyDate: _element("DA", "20040101", "19990101"),
        tags.PatientID: _element("LO", "X", "P1"),
    },
    {},
]
QUERIES = {
    tags.StudyDate: ["20030101", "20030101-20050601", "-20040101", "20050101-", "20050601-"],
    tags.PatientID: ["P1", "P1*", "P?", "*1", "p1", "X", "P12", "Q*"],
    tags.AccessionNumber: ["A1", "A1*", "B"],
    tags.ModalitiesInStudy: ["CT", "MR", "US", "C*"],
}


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    names = ", ".join(column.name for column in STUDY_COLUMNS)
    db.execute(f"CREATE TABLE studies (n INTEGER, sort_key TEXT, irregular INTEGER, {names})")
    for n, attributes in enumerate(STUDIES):
        values = [column.value(attributes) for column in STUDY_COLUMNS]
        row = (n, "|".join(study_sort_key(attributes)), is_irregular(attributes, values), *values)
        db.execute(f"INSERT INTO studies VALUES (?, ?, ?{', ?' * len(values)})", row)
    return db


VRS = {tags.StudyDate: "DA", tags.PatientID: "LO", tags.AccessionNumber: "SH"}
VRS[tags.ModalitiesInStudy] = "CS"
# Studies 2 (a date of four digits) and 4 (several values) escape the columns.
IRREGULAR = {2, 4}


@pytest.mark.parametrize(
    ("tag", "text"), [(tag, text) for tag, texts in QUERIES.items() for text in texts]
)
def test_a_condition_keeps_every_match(db: sqlite3.Connection, tag: str, text: str) -> None:
    test = matcher(VRS[tag], text)
    matching = {n for n, attributes in enumerate(STUDIES) if test(attributes.get(tag))}
    where, args = study_conditions([(tag, VRS[tag], text)])
    if text.startswith("*") or (text.endswith("*") and tag == tags.ModalitiesInStudy):
        assert where == []  # nothing to narrow by: every row stays a candidate
        return
    sql = f"SELECT n FROM studies WHERE irregular = 1 OR ({where[0]})"
    kept = {n for (n,) in db.execute(sql, args)}
    assert matching <= kept
    if "*" not in text and "?" not in text:
        # Beyond the matches, only the irregular rows (and, for an open-ended
        # date range, the studies without a date) are kept.
        assert kept - matching <= IRREGULAR | ({3, 5} if text.endswith("-") else set())


def test_keys_combine_and_universal_ones_do_not_narrow() -> None:
    where, args = study_conditions(
        [
            (tags.StudyDate, "DA", "20030101-"),
            (tags.PatientID, "LO", "*"),
            (tags.PatientName, "PN", "doe*"),
            (tags.ModalitiesInStudy, "CS", ""),
            (tags.AccessionNumber, "SH", "A1"),
            (tags.AccessionNumber, "LO", "A1"),  # not the column's VR: not narrowed
        ]
    )
    assert len(where) == 2 and args == ["20030101", "A1"]


def test_values() -> None:
    [patient, accession, modalities] = STUDY_COLUMNS
    assert [column.value(STUDIES[0]) for column in STUDY_COLUMNS] == ["P1", "A1", "\\CT\\MR\\"]
    assert accession.value(STUDIES[3]) == "" and modalities.value({}) == "\\\\"
    assert patient.value(STUDIES[4]) is None
    irregular = {
        n
        for n, attributes in enumerate(STUDIES)
        if is_irregular(attributes, [column.value(attributes) for column in STUDY_COLUMNS])
    }
    assert irregular == IRREGULAR
    assert study_conditions([]) == ([], [])
