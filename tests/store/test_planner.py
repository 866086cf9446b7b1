from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from dicomweb_archive import tags
from dicomweb_archive.model.matching import matcher
from dicomweb_archive.store import planner
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.columns import study_conditions
from dicomweb_archive.store.index import Level, QidoIndex, Query
from dicomweb_archive.store.indexrows import FreshRows
from dicomweb_archive.types import JSONDataset

ROOT = "1.2.826.0.1.3680043.10.1163.9"
COUNT = 1_500


def _row(n: int) -> JSONDataset:
    """Study ``n``: names, IDs and dates spread as in a real archive, some rare."""
    name = "Rare^One" if n % 500 == 7 else f"{['Doe', 'Roe', 'Smith'][n % 3]}^{n}"
    row: JSONDataset = {
        tags.StudyInstanceUID: {"vr": "UI", "Value": [f"{ROOT}.{n}"]},
        tags.StudyDate: {"vr": "DA", "Value": [f"{2000 + n % 20}{1 + n % 12:02d}01"]},
        tags.PatientName: {"vr": "PN", "Value": [{"Alphabetic": name}]},
        tags.PatientID: {"vr": "LO", "Value": [f"P{n % 700}"]},
        tags.AccessionNumber: {"vr": "SH", "Value": [f"A{n}"]},
        tags.ModalitiesInStudy: {"vr": "CS", "Value": ["MR"] if n % 50 == 3 else ["CT"]},
    }
    if n % 97 == 5:  # irregular: two names
        row[tags.PatientName]["Value"].append({"Alphabetic": "Doe^Twice"})
    return row


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QidoIndex]:
    folder: Path = tmp_path_factory.mktemp("planner")
    with QidoIndex(open_archive(folder), folder / "index.sqlite") as index:
        rows = FreshRows()
        for n in random.Random(3).sample(range(COUNT), COUNT):
            empty: dict[str, dict[str, object]] = {"study": {}, "series": {}, "instances": {}}
            rows.add(f"{ROOT}.{n}", _row(n), empty, [])
        with index.transaction():
            index.insert(rows)
        yield index


def _expected(match: list[tuple[str, str, str]]) -> list[str]:
    """Every match in the study order: regular rows first, then irregular ones."""
    tests = [(tag, matcher(vr, text)) for tag, vr, text in match]
    found = [n for n in range(COUNT) if all(t(_row(n).get(tag)) for tag, t in tests)]
    date = {n: _row(n)[tags.StudyDate]["Value"][0] for n in found}
    order = sorted(found, key=lambda n: (n % 97 == 5, date[n], f"{ROOT}.{n}"))
    return [f"{ROOT}.{n}" for n in order]


def _uids(rows: list[JSONDataset]) -> list[str]:
    return [row[tags.StudyInstanceUID]["Value"][0] for row in rows]


SEARCHES = [
    [],
    [(tags.PatientName, "PN", "doe*")],
    [(tags.PatientName, "PN", "*are^on*")],
    [(tags.PatientName, "PN", "*mith^1*")],
    [(tags.PatientName, "PN", "rare^one")],
    [(tags.PatientID, "LO", "P42*")],
    [(tags.PatientID, "LO", "P7")],
    [(tags.AccessionNumber, "SH", "*12*")],
    [(tags.StudyDate, "DA", "20030101-20050601")],
    [(tags.ModalitiesInStudy, "CS", "MR"), (tags.StudyDate, "DA", "20100101-")],
    [(tags.ModalitiesInStudy, "CS", "CT"), (tags.PatientName, "PN", "*twice*")],
    [(tags.StudyInstanceUID, "UI", f"{ROOT}.5\\{ROOT}.9,{ROOT}.102")],
    # Left partly to the matcher: a key without a column.
    [(tags.PatientName, "PN", "s*"), (tags.StudyTime, "TM", "-1200")],
]


@pytest.mark.parametrize("match", SEARCHES)
@pytest.mark.parametrize("walk", [planner.MIN_WALK, 10])
def test_every_page_is_the_matchers(
    index: QidoIndex, match: list[tuple[str, str, str]], walk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short walk sends the searches to their look-ups, a long one to the walk.
    monkeypatch.setattr(planner, "MIN_WALK", walk)
    monkeypatch.setattr(planner, "WALK", 1 if walk < 100 else planner.WALK)
    expected = _expected(match)
    assert _uids(index.search(Level.STUDY, Query(match=match, limit=None))) == expected
    for limit, offset in [(10, 0), (100, 0), (7, 3), (50, len(expected) - 20), (5, len(expected))]:
        rows = index.search(Level.STUDY, Query(match=match, limit=limit, offset=max(offset, 0)))
        assert _uids(rows) == expected[max(offset, 0) :][:limit], (limit, offset)


def test_a_rare_match_is_looked_up_in_its_columns_index(index: QidoIndex) -> None:
    conditions, whole = study_conditions([(tags.PatientID, "LO", "P42*")])
    assert whole
    with index._snapshot() as db:
        sql, args = planner._select("id", conditions[0], conditions)
        plan = " ".join(row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", args))
        assert "USING COVERING INDEX studies_patient_id" in plan or "studies_patient_id" in plan
        ids = planner.study_page(db, conditions, 100, 0, index.text_search)
        assert len(ids) == len(_expected([(tags.PatientID, "LO", "P42*")]))


def test_a_substring_is_looked_up_in_the_text_index(index: QidoIndex) -> None:
    assert index.text_search
    conditions, _ = study_conditions([(tags.PatientName, "PN", "*are^on*")])
    with index._snapshot() as db:
        sql, args = planner._select("id", conditions[0], conditions)
        assert "study_text" in sql
        assert len(db.execute(sql, args).fetchall()) == COUNT // 500


def test_a_rare_prefix_is_looked_up_without_a_walk(index: QidoIndex) -> None:
    searches = [
        ((tags.PatientID, "LO", "P42*"), False),  # 22 matches
        ((tags.PatientName, "PN", "Rare*"), False),
        ((tags.PatientID, "LO", "P*"), True),  # every study: the walk fills the page
        ((tags.PatientName, "PN", "*are^on*"), True),  # a substring: walked first
    ]
    for key, walks in searches:
        statements: list[str] = []
        conditions, _ = study_conditions([key])
        with index._snapshot() as db:
            db.set_trace_callback(statements.append)
            ids = planner.study_page(db, conditions, 100, 0, index.text_search)
            db.set_trace_callback(None)
        walked = any(f"LIMIT {planner.MIN_WALK}" in sql for sql in statements)
        assert walked == walks, (key, statements)
        assert len(ids) == min(100, len(_expected([key])))
