"""An identifier read as an index query; a match written back as an identifier."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from dicomweb_archive.dimse.query import match_identifier, patients, read_identifier
from dicomweb_archive.model.matching import InvalidQueryError
from dicomweb_archive.store.index import Level


def _identifier(level: str, **keys: object) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_keys_with_values_match_every_key_returns() -> None:
    identifier = _identifier(
        "SERIES",
        StudyInstanceUID="1.2.3",
        PatientName="DOE^J*",
        StudyDate="20240101-20241231",
        ModalitiesInStudy=["CT", "MR"],
        SeriesInstanceUID="",
        SpecificCharacterSet="ISO_IR 100",
    )
    search = read_identifier(identifier)
    assert search.level == "SERIES" and search.index_level is Level.SERIES
    # In the identifier's (tag) order.
    assert search.query.match == [
        ("00080020", "DA", "20240101-20241231"),
        ("00080061", "CS", "CT\\MR"),
        ("00100010", "PN", "DOE^J*"),
        ("0020000D", "UI", "1.2.3"),
    ]
    assert search.query.include == {"00080020", "00080061", "00100010", "0020000D", "0020000E"}
    assert search.query.study == "1.2.3" and search.query.series is None
    assert 0x00080005 not in {tag for tag, _ in search.keys}


def test_a_list_of_uids_does_not_narrow_to_one_study() -> None:
    search = read_identifier(_identifier("IMAGE", StudyInstanceUID=["1.2", "1.3"]))
    assert search.query.study is None
    assert search.query.match == [("0020000D", "UI", "1.2\\1.3")]


def test_keys_inside_a_sequence_item_match_inside_it() -> None:
    item = Dataset()
    item.CodeValue = "T-1"
    item.CodeMeaning = ""
    identifier = _identifier("STUDY", ProcedureCodeSequence=[item])
    search = read_identifier(identifier)
    assert search.query.match == [("00081032.00080100", "SH", "T-1")]
    assert search.query.include == {"00081032"}


@pytest.mark.parametrize("level", ["", "FRAME"])
def test_a_level_we_do_not_know_is_refused(level: str) -> None:
    with pytest.raises(InvalidQueryError, match="Query/Retrieve Level"):
        read_identifier(_identifier(level))


def test_a_match_holds_every_return_key_empty_where_unknown() -> None:
    search = read_identifier(
        _identifier("STUDY", StudyInstanceUID="", PatientName="", RetrieveAETitle="", StudyID="")
    )
    row = {
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
        "00080061": {"vr": "CS", "Value": ["CT"]},  # not asked for: not returned
    }
    ds = match_identifier(row, search, "DWA")
    assert ds.StudyInstanceUID == "1.2.3" and ds.PatientName == "Doe^Jane"
    assert ds.RetrieveAETitle == "DWA" and ds.QueryRetrieveLevel == "STUDY"
    assert ds.StudyID == "" and "ModalitiesInStudy" not in ds
    assert ds.SpecificCharacterSet == "ISO_IR 192"


def test_studies_are_grouped_by_patient_with_counts() -> None:
    def row(patient: str, series: int, instances: int) -> dict[str, object]:
        return {
            "00100020": {"vr": "LO", "Value": [patient]},
            "00201206": {"vr": "IS", "Value": [series]},
            "00201208": {"vr": "IS", "Value": [instances]},
        }

    grouped = patients([row("A", 1, 10), row("B", 2, 3), row("A", 2, 5)])
    assert [first["00100020"]["Value"] for first, _ in grouped] == [["A"], ["B"]]
    counts = grouped[0][1]
    assert counts["00201200"]["Value"] == [2]
    assert counts["00201202"]["Value"] == [3]
    assert counts["00201204"]["Value"] == [15]
