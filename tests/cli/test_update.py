"""``dwa update``: corrections through the CLI, seen over real HTTP by dicomweb-client
(QIDO-RS, metadata, P10 retrieve); refusals and usage errors."""

from __future__ import annotations

from click.testing import CliRunner
from dicomweb_client.api import DICOMwebClient

from dicomweb_archive.cli.main import cli
from dicomweb_archive.server.app import create_app
from tests.cli.conftest import Converted
from tests.server.live import live_server


def test_update_then_read_it_over_dicomweb(converted: Converted) -> None:
    archive, sources = converted
    ct = sources[0]
    result = CliRunner().invoke(
        cli,
        [
            "update",
            str(archive),
            "--study",
            ct.StudyInstanceUID,
            "--set",
            "PatientName=Corrected^Name",
            "--set",
            "PatientID=ID-2",
            "--by",
            "radiographer",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"updated PatientName, PatientID of study {ct.StudyInstanceUID}: 1 instances changed, "
        f"0 unchanged -> {archive}\n"
    )
    with live_server(create_app(archive)) as url:
        web = DICOMwebClient(url)
        [row] = web.search_for_studies(search_filters={"PatientName": "corrected*"})
        assert row["00100020"]["Value"] == ["ID-2"]
        meta = web.retrieve_instance_metadata(
            ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID
        )
        assert meta["00100010"]["Value"] == [{"Alphabetic": "Corrected^Name"}]
        p10 = web.retrieve_instance(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
        assert (p10.PatientName, p10.PatientID) == ("Corrected^Name", "ID-2")
        assert p10.PixelData == ct.PixelData
        assert p10.StudyDescription == ct.StudyDescription
        # The other studies are untouched.
        others = web.search_for_studies(search_filters={"PatientName": "Corrected*"})
        assert len(others) == 1


def test_refusals_and_usage_errors(converted: Converted) -> None:
    archive, sources = converted
    runner = CliRunner()
    study = ["update", str(archive), "--study", sources[0].StudyInstanceUID]
    pixel = runner.invoke(cli, [*study, "--set", "Rows=2"])
    assert pixel.exit_code == 2 and "Rows describes the pixel data" in pixel.output
    uid = runner.invoke(cli, [*study, "--set", "SOPInstanceUID=1.2"])
    assert uid.exit_code == 2 and "identifies the instance" in uid.output
    assert runner.invoke(cli, study).exit_code == 2  # --set is required
    lone = runner.invoke(cli, [*study, "--instance", "1.2", "--set", "PatientID=1"])
    assert lone.exit_code == 2 and "--instance needs --series" in lone.output
    absent = runner.invoke(
        cli, ["update", str(archive), "--study", "1.2.3", "--set", "PatientID=1"]
    )
    assert absent.exit_code == 1
    assert absent.output == "error: study 1.2.3 is not in the archive\n"
