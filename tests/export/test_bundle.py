"""The P10 files of a study or series: names, selection, ZIP members, failures."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.export import bundle
from dicomweb_archive.export.bundle import (
    ExportFile,
    Namer,
    find_series,
    iter_p10,
    p10_members,
    safe_name,
    write_folder,
    write_zip,
)
from dicomweb_archive.export.p10 import export_instance
from dicomweb_archive.export.zipstream import zip_stream
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.packing import pack_study
from tests.conftest import write_instance


def _archive(tmp_path: Path) -> tuple[Archive, str, list[str]]:
    study = generate_uid()
    series = [generate_uid(), generate_uid(), generate_uid()]
    inputs = tmp_path / "in"
    # Two series share number, modality and description; two instances share a number.
    write_instance(
        inputs, study=study, series=series[0], patient_id="A/B \u00e9", instance_number=1
    )
    write_instance(
        inputs, study=study, series=series[0], patient_id="A/B \u00e9", instance_number=1
    )
    write_instance(
        inputs, study=study, series=series[0], patient_id="A/B \u00e9", instance_number=2
    )
    write_instance(
        inputs, study=study, series=series[1], patient_id="A/B \u00e9", instance_number=7
    )
    write_instance(
        inputs,
        study=study,
        series=series[2],
        patient_id="A/B \u00e9",
        series_number=2,
        modality="MR",
    )
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([str(inputs)]).ok
    return open_archive(root), study, series


def test_safe_names() -> None:
    assert safe_name("Doe^Jane / CT chest") == "Doe_Jane_CT_chest"
    assert safe_name("../..") == ""
    assert safe_name(".hidden") == "hidden"
    assert len(safe_name("x" * 200)) == 64
    namer = Namer()
    assert namer.name("", "a", "1") == "a"
    assert namer.name("", "a", "2") == "a-2"
    assert namer.name("", "a", "1") == "a"  # the same owner keeps its name
    assert namer.name("a", "0001", "3", ".dcm") == "0001.dcm"
    assert namer.name("a", "0001", "4", ".dcm") == "0001-2.dcm"


def test_names_are_readable_and_unique(tmp_path: Path) -> None:
    archive, study, series = _archive(tmp_path)
    names = [planned.name for planned, _ in iter_p10(archive, [(study, None)])]
    top = "A_B_20240102_Test_study"
    # Series of equal number go in UID order: the first keeps the plain name.
    first, second = ("1_CT_Series_1", "1_CT_Series_1-2")[:: 1 if series[0] < series[1] else -1]
    assert sorted(names) == sorted(
        [
            f"{top}/{first}/0001.dcm",
            f"{top}/{first}/0001-2.dcm",
            f"{top}/{first}/0002.dcm",
            f"{top}/{second}/0007.dcm",
            f"{top}/2_MR_Series_2/0001.dcm",
        ]
    )

    only = [planned for planned, _ in iter_p10(archive, [(study, series[2])])]
    assert [p.name for p in only] == [f"{top}/2_MR_Series_2/0001.dcm"]
    assert find_series(archive, series[2]) == study
    with pytest.raises(ResourceNotFoundError):
        find_series(archive, "1.2.3")
    with pytest.raises(ResourceNotFoundError):
        list(iter_p10(archive, [(study, "1.2.3")]))
    with pytest.raises(ResourceNotFoundError):
        list(iter_p10(archive, [("1.2.3", None)]))


def test_zip_of_a_packed_study(tmp_path: Path) -> None:
    archive, study, _ = _archive(tmp_path)
    expected = {planned.name: data for planned, data in iter_p10(archive, [(study, None)])}
    pack_study(archive, study, remove=True)
    data = b"".join(zip_stream(p10_members(archive, [(study, None)])))
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert sorted(z.namelist()) == sorted(expected)
        for name in z.namelist():
            assert z.read(name) == expected[name]
            ds = pydicom.dcmread(io.BytesIO(z.read(name)))
            assert ds.StudyInstanceUID == study
    target = tmp_path / "study.zip"
    assert write_zip(archive, [(study, None)], target) == 5
    assert target.read_bytes()[:4] == b"PK\x03\x04"
    written = write_folder(archive, [(study, None)], tmp_path / "out")
    assert {str(p.relative_to(tmp_path / "out")) for p in written} == set(expected)
    assert not list((tmp_path / "out").rglob(".*"))  # no temporary files left


@pytest.mark.usefixtures("moving_clock")
def test_a_zip_written_again_is_the_same_file(tmp_path: Path) -> None:
    """``dwa export -o x.zip`` twice, the clock moving between: the same bytes."""
    archive, study, _ = _archive(tmp_path)
    first, second = tmp_path / "1.zip", tmp_path / "2.zip"
    assert write_zip(archive, [(study, None)], first) == 5
    assert write_zip(archive, [(study, None)], second) == 5
    assert first.read_bytes() == second.read_bytes()


def test_a_failing_instance_is_reported_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, study, series = _archive(tmp_path)

    def export(files: object, st: str, se: str, sop: str) -> bytes:
        if se == series[2]:
            raise ValueError("cannot be written")
        return export_instance(files, st, se, sop)  # type: ignore[arg-type]

    monkeypatch.setattr(bundle, "export_instance", export)
    failures: list[tuple[ExportFile, Exception]] = []
    done = list(iter_p10(archive, [(study, None)], lambda f, e: failures.append((f, e))))
    assert len(done) == 4
    [(failed, error)] = failures
    assert failed.series_instance_uid == series[2] and str(error) == "cannot be written"
    with pytest.raises(ValueError):
        list(iter_p10(archive, [(study, None)]))
