"""``dwa pack`` and ``dwa unpack``: results, one line per failure, exit codes."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from dicomweb_archive.cli.main import cli
from tests.cli.conftest import Converted
from tests.conftest import snapshot


def _contents(root: Path) -> dict[str, bytes]:
    return {name: data for name, (_, data) in snapshot(root).items()}


def test_pack_all_then_unpack_all_in_place_is_lossless(
    tmp_path: Path, converted: Converted
) -> None:
    runner = CliRunner()
    archive, originals = converted
    before = _contents(archive)

    packed = runner.invoke(cli, ["pack", str(archive), "--all", "--remove"])
    assert packed.exit_code == 0, packed.output
    assert packed.stdout.count("packed ") == 3
    for ds in originals:
        assert f"packed {ds.StudyInstanceUID} -> " in packed.stdout
    assert sorted(p.name for p in (archive / "studies").iterdir()) == sorted(
        [f"{ds.StudyInstanceUID}.zip" for ds in originals] + ["index.json.gz"]
    )

    unpacked = runner.invoke(cli, ["unpack", str(archive), "--all"])
    assert unpacked.exit_code == 0, unpacked.output
    assert unpacked.stdout.count("unpacked ") == 3
    assert _contents(archive) == before


def test_pack_keeps_the_folder_unless_asked_and_unpack_by_uid(
    tmp_path: Path, converted: Converted
) -> None:
    runner = CliRunner()
    archive, originals = converted
    study = originals[0].StudyInstanceUID
    result = runner.invoke(cli, ["pack", str(archive), "--study", study])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"packed {study} -> ") and result.stdout.endswith(" bytes)\n")
    assert (archive / "studies" / f"{study}.zip").is_file()
    assert (archive / "studies" / study).is_dir()

    result = runner.invoke(cli, ["pack", str(archive), "--study", study, "--remove"])
    assert result.exit_code == 0, result.output
    assert not (archive / "studies" / study).exists()
    result = runner.invoke(cli, ["unpack", str(archive), "--study", study])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"unpacked {study} -> {archive}\n"
    assert (archive / "studies" / study / "metadata.gz").exists()


def test_pack_into_another_archive_and_unpack_loose_zips(
    tmp_path: Path, converted: Converted
) -> None:
    runner = CliRunner()
    archive, originals = converted
    zipped = tmp_path / "zipped"
    study = originals[0].StudyInstanceUID
    result = runner.invoke(cli, ["pack", str(archive), "--study", study, "-o", str(zipped)])
    assert result.exit_code == 0, result.output
    assert (zipped / "manifest.json").exists()
    assert (archive / "studies" / study).is_dir()  # the source archive is left alone
    fresh = tmp_path / "fresh"
    result = runner.invoke(cli, ["unpack", str(fresh), str(zipped / "studies" / f"{study}.zip")])
    assert result.exit_code == 0, result.output
    assert (fresh / "studies" / study / "metadata.gz").exists()


def test_failures_are_one_line_each_and_exit_1(tmp_path: Path, converted: Converted) -> None:
    runner = CliRunner()
    archive, originals = converted
    study = originals[0].StudyInstanceUID

    result = runner.invoke(cli, ["pack", str(archive), "--study", study, "--study", "1.2.3"])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"packed {study} -> ")
    assert result.stderr == "failed: 1.2.3: study 1.2.3 is not in the archive\n"

    result = runner.invoke(cli, ["unpack", str(archive), "--study", "1.2.3"])
    assert result.exit_code == 1
    assert result.stderr == "failed: 1.2.3: no such packed study in the archive\n"

    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"no zip")
    result = runner.invoke(cli, ["unpack", str(archive), str(bad)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"failed: {bad}: ") and result.stderr.count("\n") == 1

    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(cli, ["pack", str(empty), "--all"])
    assert result.exit_code == 1
    assert result.stderr == f"error: {empty}: not a dicomweb-archive folder (no manifest)\n"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    root = str(tmp_path)
    for arguments in (
        ["pack", root],
        ["pack", root, "--all", "--study", "1.2"],
        ["pack", root, "--all", "--remove", "-o", "x"],
        ["pack", str(tmp_path / "missing"), "--all"],
        ["unpack", root],
        ["unpack", root, "--all", "--study", "1.2"],
        ["unpack", root, str(tmp_path / "missing.zip")],
    ):
        assert CliRunner().invoke(cli, arguments).exit_code == 2, arguments
