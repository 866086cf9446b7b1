"""``dwa attach``: files into an extension folder of a study, series or instance."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from dicomweb_archive.cli.main import cli
from dicomweb_archive.model import paths
from tests.cli.conftest import Converted

FOLDER = "_aistartupco_covid19_detection"


def test_attach_to_an_instance(converted: Converted, tmp_path: Path) -> None:
    archive, sources = converted
    ds = sources[0]
    result_json = tmp_path / "result.json"
    result_json.write_bytes(b'{"covid19": 0.9}')
    heatmap = tmp_path / "heatmap.png"
    heatmap.write_bytes(b"\x89PNG")
    uids = [
        "--study", ds.StudyInstanceUID,
        "--series", ds.SeriesInstanceUID,
        "--instance", ds.SOPInstanceUID,
    ]  # fmt: skip
    command = ["attach", str(archive), *uids, FOLDER, str(result_json), str(heatmap)]
    run = CliRunner().invoke(cli, command)
    assert run.exit_code == 0, run.output
    assert run.output.count("added: ") == 2
    assert "application/json" in run.output and "image/png" in run.output
    folder = archive / paths.instance_dir(*uids[1::2]) / FOLDER
    assert (folder / "result.json").read_bytes() == b'{"covid19": 0.9}'
    assert (folder / "heatmap.png").read_bytes() == b"\x89PNG"
    again = CliRunner().invoke(cli, command)
    assert again.exit_code == 0 and again.output.count("unchanged: ") == 2
    listed = orjson.loads(
        gzip.decompress((archive / paths.study_extensions(ds.StudyInstanceUID)).read_bytes())
    )
    assert [f["name"] for f in listed["extensions"][0]["files"]] == ["heatmap.png", "result.json"]


def test_attach_to_a_study_and_a_series(converted: Converted, tmp_path: Path) -> None:
    archive, sources = converted
    ds = sources[1]
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4")
    for extra in ([], ["--series", ds.SeriesInstanceUID]):
        command = [
            "attach",
            str(archive),
            "--study",
            ds.StudyInstanceUID,
            *extra,
            "_v_qa",
            str(report),
        ]
        run = CliRunner().invoke(cli, command)
        assert run.exit_code == 0, run.output
    study = archive / paths.study_dir(ds.StudyInstanceUID)
    assert (study / "_v_qa" / "report.pdf").is_file()
    assert (
        archive / paths.series_dir(ds.StudyInstanceUID, ds.SeriesInstanceUID) / "_v_qa"
    ).is_dir()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--study", "1..2", "_v_x"], "not a valid UID"),
        (["--study", "{st}", "--instance", "{sop}", "_v_x"], "--instance needs --series"),
        (["--study", "{st}", "../_v_x"], "not an extension folder name"),
        (["--study", "{st}", "_V_x"], "not an extension folder name"),
        (["--study", "1.2.3.4", "_v_x"], "not in the archive"),
    ],
)
def test_refused(converted: Converted, tmp_path: Path, arguments: list[str], message: str) -> None:
    archive, sources = converted
    ds = sources[0]
    note = tmp_path / "note.txt"
    note.write_text("n")
    filled = [a.format(st=ds.StudyInstanceUID, sop=ds.SOPInstanceUID) for a in arguments]
    run = CliRunner().invoke(cli, ["attach", str(archive), *filled, str(note)])
    assert run.exit_code != 0
    assert message in run.output
    assert not list(archive.rglob("_v_x"))


def test_a_file_name_that_is_not_one(converted: Converted, tmp_path: Path) -> None:
    archive, sources = converted
    odd = tmp_path / "two..dots"
    odd.write_text("x")
    command = ["attach", str(archive), "--study", sources[0].StudyInstanceUID, "_v_x", str(odd)]
    run = CliRunner().invoke(cli, command)
    assert run.exit_code == 2
    assert "not an extension file name" in run.output
