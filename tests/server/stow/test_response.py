"""The Store Instances Response Module of a STOW-RS answer."""

from __future__ import annotations

from dicomweb_archive import tags
from dicomweb_archive.convert.status import CANNOT_UNDERSTAND
from dicomweb_archive.server.stow.parts import Outcome
from dicomweb_archive.server.stow.response import response_dataset

ROOT = "http://host/dicomweb"


def _stored(number: int, study: str = "1.2") -> Outcome:
    return Outcome(number, "1.2.840.10008.5.1.4.1.1.2", f"1.2.3.{number}", study, "1.2.3")


def test_stored_instances_are_listed_with_their_urls() -> None:
    dataset = response_dataset(ROOT, None, [_stored(1), _stored(2)], [])
    assert dataset[tags.RetrieveURL]["Value"] == [f"{ROOT}/studies/1.2"]
    [first, _] = dataset[tags.ReferencedSOPSequence]["Value"]
    assert first[tags.RetrieveURL]["Value"] == [
        f"{ROOT}/studies/1.2/series/1.2.3/instances/1.2.3.1"
    ]
    assert first[tags.ReferencedSOPInstanceUID]["Value"] == ["1.2.3.1"]
    assert tags.FailedSOPSequence not in dataset


def test_failures_carry_their_reason_and_no_study_url_across_studies() -> None:
    failed = Outcome(3).fail(CANNOT_UNDERSTAND, "not DICOM")
    dataset = response_dataset(ROOT, None, [_stored(1, "1.2"), _stored(2, "1.3")], [failed])
    assert tags.RetrieveURL not in dataset  # two studies: no one study to name
    [entry] = dataset[tags.FailedSOPSequence]["Value"]
    assert entry[tags.FailureReason]["Value"] == [CANNOT_UNDERSTAND]
    assert entry[tags.ReferencedSOPInstanceUID] == {"vr": "UI"}
    named = response_dataset(ROOT, "1.4", [], [failed])
    assert named[tags.RetrieveURL]["Value"] == [f"{ROOT}/studies/1.4"]
