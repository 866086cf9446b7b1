"""Copies of one instance among a run's inputs end as a run on one core leaves them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.convert.copies import Copies
from dicomweb_archive.convert.inputs import InputRef
from dicomweb_archive.convert.instance import InstanceOutcome
from dicomweb_archive.model import paths
from dicomweb_archive.types import InstanceKey
from tests.conftest import read_json_gz, tree, write_instance


def _outcome(name: str, status: str, sop: str = "1.2.3") -> InstanceOutcome:
    return InstanceOutcome(name, status, None, "1.2", "1.2.1", sop)  # type: ignore[arg-type]


def test_groups_are_the_instances_a_run_stored_more_than_once() -> None:
    refs = [InputRef(f"{n}.dcm") for n in range(5)]
    copies = Copies(refs)
    copies.add(3, _outcome("3.dcm", "converted"))
    copies.add(0, _outcome("0.dcm", "updated"))
    copies.add(1, _outcome("1.dcm", "converted", sop="9.9"))  # alone: no group
    copies.add(2, _outcome("2.dcm", "failed"))  # stored nothing
    copies.add(4, InstanceOutcome("4.dcm", "skipped"))
    assert copies.groups() == [(True, [(0, refs[0]), (3, refs[3])])]
    assert copies.studies() == {"1.2"}
    assert copies.outcome(3).name == "3.dcm"
    lost = Copies.lost(copies.groups()[0], "its worker died")
    assert [(i, o.status, o.reason) for i, o in lost] == [
        (0, "failed", "not stored in input order: its worker died"),
        (3, "failed", "not stored in input order: its worker died"),
    ]


def test_copies_equal_to_the_archive_are_left_alone() -> None:
    copies = Copies([InputRef("a"), InputRef("b")])
    copies.add(1, _outcome("b", "unchanged"))
    copies.add(0, _outcome("a", "unchanged"))
    assert copies.groups() == []


#: The replay in input order makes the archive of one core under the overwrite
#: policy (the last copy wins); the default, reject, keeps the first one stored.
OVERWRITE = "overwrite"
ONE = ConvertOptions(workers=1, on_duplicate=OVERWRITE)
TWO = ConvertOptions(workers=2, on_duplicate=OVERWRITE)


@pytest.fixture
def copied(tmp_path: Path) -> tuple[list[str], str]:
    """Versions and copies of one instance among others: a, b (other pixels),
    a's copy under another name, then a again; ten other instances between."""
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    a = write_instance(tmp_path / "a", study=study, series=series, sop=sop, instance_number=1)
    a = a.rename(a.with_name("a.dcm"))
    b = write_instance(tmp_path / "b", study=study, series=series, sop=sop, instance_number=2)
    b = b.rename(b.with_name("b.dcm"))
    copy = tmp_path / "copy.dcm"
    shutil.copyfile(a, copy)
    others = [
        write_instance(tmp_path / "others", study=study, series=series, instance_number=n)
        for n in range(3, 13)
    ]
    inputs = [str(p) for p in (a, *others[:5], b, *others[5:], copy, a)]
    return inputs, paths.instance_info(study, series, sop)


def test_any_number_of_workers_ends_as_one_core(
    tmp_path: Path, copied: tuple[list[str], str]
) -> None:
    inputs, _ = copied
    one = Converter(tmp_path / "one", ONE).convert(inputs)
    assert [(o.name, o.status) for o in one.updated] == [
        (inputs[6], "updated"),
        (inputs[12], "updated"),
    ]
    assert one.counts == {"converted": 11, "updated": 2, "unchanged": 1}
    for _ in range(3):  # the pool's order varies from run to run
        shutil.rmtree(tmp_path / "two", ignore_errors=True)
        two = Converter(
            tmp_path / "two", ConvertOptions(workers=2, on_duplicate=OVERWRITE)
        ).convert(inputs)
        assert tree(tmp_path / "two") == tree(tmp_path / "one")
        assert two.counts == one.counts
        assert [o.name for o in two.updated] == [o.name for o in one.updated]


def test_the_info_names_the_first_input_while_only_the_name_differs(
    tmp_path: Path, copied: tuple[list[str], str]
) -> None:
    """The info records a source name, not the content: b and the copy change the
    frames and metadata but not the info, which keeps naming a, stored first."""
    inputs, info = copied
    for run in range(3):
        archive = tmp_path / str(run)
        Converter(archive, TWO).convert(inputs)
        assert read_json_gz(archive / info)["source"]["name"] == "a.dcm"


def test_a_replay_starts_from_whatever_a_worker_stored_first(
    tmp_path: Path, copied: tuple[list[str], str]
) -> None:
    """Workers took the copy first: the replay still ends with a run on one core."""
    inputs, info = copied
    archive = tmp_path / "archive"
    Converter(archive, ONE).convert([inputs[-2]])  # copy.dcm
    assert read_json_gz(archive / info)["source"]["name"] == "copy.dcm"
    group = (True, [(i, InputRef(inputs[i])) for i in (0, 6, 12, 13)])
    replayed = Copies.replay(str(archive), ConvertOptions(on_duplicate=OVERWRITE), group)
    assert [(i, o.status) for i, o in replayed] == [
        (0, "converted"),
        (6, "updated"),
        (12, "updated"),
        (13, "unchanged"),
    ]
    assert read_json_gz(archive / info)["source"]["name"] == "a.dcm"
    Converter(tmp_path / "one", ONE).convert(inputs)
    assert (archive / info).read_bytes() == (tmp_path / "one" / info).read_bytes()


class _Backwards:
    """Runs the tasks here, last item first: the order a pool may happen to take."""

    workers = 2
    local = True

    def map(self, task, items, lost):  # type: ignore[no-untyped-def]
        return (task(item) for item in reversed(list(items)))


@pytest.fixture
def conflicting(tmp_path: Path) -> tuple[list[str], InstanceKey, InstanceKey]:
    """Three versions of one SOP Instance UID: a, a's copy, b (other pixels),
    then c (another study); other instances between them."""
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    versions = []
    for name, where, number in (("a", study, 1), ("b", study, 2), ("c", generate_uid(), 3)):
        made = write_instance(
            tmp_path / name, study=where, series=series, sop=sop, instance_number=number
        )
        versions.append(made.rename(made.with_name(f"{name}.dcm")))
    copy = tmp_path / "copy.dcm"
    shutil.copyfile(versions[0], copy)
    others = [
        write_instance(tmp_path / "others", study=study, series=series, instance_number=n)
        for n in range(4, 8)
    ]
    a, b, c = versions
    inputs = [str(p) for p in (a, others[0], copy, b, *others[1:], c)]
    c_key = InstanceKey(dcmread(versions[2]).StudyInstanceUID, series, sop)
    return inputs, InstanceKey(study, series, sop), c_key


def _without_journal(files: dict[str, bytes | None]) -> dict[str, bytes | None]:
    return {name: data for name, data in files.items() if name != ".dwa/deleting/"}


@pytest.mark.parametrize("policy", ["reject", "overwrite"])
def test_refused_copies_end_as_one_core_whatever_the_order(
    tmp_path: Path, conflicting: tuple[list[str], InstanceKey, InstanceKey], policy: str
) -> None:
    """Workers that store a later copy first (here: every input in reverse) still
    end with the archive, counts and reports of one core."""
    inputs, a_key, c_key = conflicting
    options = ConvertOptions(workers=1, on_duplicate=policy)  # type: ignore[arg-type]
    one = Converter(tmp_path / "one", options).convert(inputs)
    back = Converter(tmp_path / "back", options, runner=_Backwards()).convert(inputs)
    # The replay's overwrite may leave the deletion journal's folder, empty.
    assert _without_journal(tree(tmp_path / "back")) == _without_journal(tree(tmp_path / "one"))
    assert back.to_json() | {"seconds": 0, "instancesPerSecond": 0} == one.to_json() | {
        "seconds": 0,
        "instancesPerSecond": 0,
    }
    # The first copy kept (reject), or the last one stored, in another study.
    kept, gone = (a_key, c_key) if policy == "reject" else (c_key, a_key)
    assert (tmp_path / "one" / paths.instance_metadata(*kept)).exists()
    assert not (tmp_path / "one" / paths.instance_metadata(*gone)).exists()
    if policy == "reject":
        assert one.counts == {"converted": 5, "unchanged": 1, "failed": 2}
        assert [o.name for o in one.failures] == [inputs[3], inputs[7]]
