"""The study's bulk data document: each value's instances and tag paths."""

from __future__ import annotations

from dicomweb_archive.model.bulkcontext import bulkdata_document, bulkdata_uses, document_of_uses

A = "bulkdata/ab/" + "1" * 62
B = "bulkdata/cd/" + "2" * 62


def _instance(sop: str, *elements: tuple[str, dict[str, object]]) -> dict[str, object]:
    return {"00080018": {"vr": "UI", "Value": [sop]}, **dict(elements)}


def test_nested_values_have_their_tag_path() -> None:
    dataset = {
        "00540016": {
            "vr": "SQ",
            "Value": [
                {"00181072": {"vr": "OB", "BulkDataURI": B}},
                {"00080100": {"vr": "SH", "Value": ["x"]}},
                {
                    "00400555": {
                        "vr": "SQ",
                        "Value": [{}, {"00181072": {"vr": "OB", "BulkDataURI": A}}],
                    }
                },
            ],
        },
        "7FE00010": {"vr": "OB", "BulkDataURI": "series/1.2/instances/1.2.3/frames"},
        "00091010": {"vr": "UN", "BulkDataURI": A},
    }
    assert sorted(bulkdata_uses(dataset)) == [
        (A, "00091010", "UN"),
        (A, "00540016/2/00400555/1/00181072", "OB"),
        (B, "00540016/0/00181072", "OB"),
    ]


def test_document_lists_every_use_of_a_shared_value() -> None:
    by_series = {
        "1.2.2": [_instance("1.2.2.2", ("00291010", {"vr": "OB", "BulkDataURI": A}))],
        "1.2.1": [
            _instance("1.2.1.2", ("00291010", {"vr": "OB", "BulkDataURI": A})),
            _instance("1.2.1.1", ("00420011", {"vr": "OB", "BulkDataURI": B})),
            _instance("1.2.1.3", ("00100010", {"vr": "PN", "Value": [{"Alphabetic": "X"}]})),
        ],
    }
    document = bulkdata_document("1.2", by_series)
    assert document["format"] == "dicomweb-archive/bulkdata"
    assert document["studyInstanceUID"] == "1.2"
    assert list(document["bulkdata"]) == [A, B]
    assert document["bulkdata"][A] == [
        {
            "seriesInstanceUID": "1.2.1",
            "sopInstanceUID": "1.2.1.2",
            "tagPath": "00291010",
            "vr": "OB",
        },
        {
            "seriesInstanceUID": "1.2.2",
            "sopInstanceUID": "1.2.2.2",
            "tagPath": "00291010",
            "vr": "OB",
        },
    ]
    assert document["bulkdata"][B] == [
        {
            "seriesInstanceUID": "1.2.1",
            "sopInstanceUID": "1.2.1.1",
            "tagPath": "00420011",
            "vr": "OB",
        }
    ]


def test_no_bulk_data() -> None:
    assert bulkdata_document("1.2", {"1.2.1": [_instance("1.2.1.1")]})["bulkdata"] == {}


def test_a_document_of_uses_found_once_equals_one_found_from_datasets() -> None:
    used = ("00091010", {"vr": "UN", "BulkDataURI": A})
    by_series = {"1.2.1": [_instance("1.2.1.2", used), _instance("1.2.1.1", used)]}
    uses = [
        (series, dataset["00080018"]["Value"][0], list(bulkdata_uses(dataset)))
        for series, datasets in by_series.items()
        for dataset in datasets
    ]
    assert document_of_uses("1.2", uses) == bulkdata_document("1.2", by_series)
