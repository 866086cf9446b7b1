"""``dwa delete``: a study, a series or an instance; usage errors; absent targets."""

from __future__ import annotations

from click.testing import CliRunner

from dicomweb_archive.cli.main import cli
from dicomweb_archive.store.archive import open_archive
from tests.cli.conftest import Converted


def test_delete_an_instance_then_a_study(converted: Converted) -> None:
    archive, sources = converted
    runner = CliRunner()
    ct = sources[0]
    uids = ["--study", ct.StudyInstanceUID, "--series", ct.SeriesInstanceUID]
    result = runner.invoke(cli, ["delete", str(archive), *uids, "--instance", ct.SOPInstanceUID])
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"deleted instance {ct.SOPInstanceUID} (series {ct.SeriesInstanceUID}, study "
        f"{ct.StudyInstanceUID}): 1 instances, 0 bulk data files (the study is gone) -> {archive}\n"
    )
    mr = sources[1]
    result = runner.invoke(cli, ["delete", str(archive), "--study", mr.StudyInstanceUID])
    assert result.exit_code == 0, result.output
    with open_archive(archive) as opened:
        assert opened.study_uids() == [sources[2].StudyInstanceUID]
    again = runner.invoke(cli, ["delete", str(archive), "--study", mr.StudyInstanceUID])
    assert again.exit_code == 1
    assert again.output == f"error: study {mr.StudyInstanceUID} is not in the archive\n"


def test_usage_errors(converted: Converted) -> None:
    archive, sources = converted
    runner = CliRunner()
    study = sources[0].StudyInstanceUID
    lone = runner.invoke(cli, ["delete", str(archive), "--study", study, "--instance", "1.2"])
    assert lone.exit_code == 2 and "--instance needs --series" in lone.output
    bad = runner.invoke(cli, ["delete", str(archive), "--study", "1.x"])
    assert bad.exit_code == 2 and "'1.x' is not a valid UID" in bad.output
    assert runner.invoke(cli, ["delete", str(archive)]).exit_code == 2
