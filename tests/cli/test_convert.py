from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file

from dicomweb_archive import cluster
from dicomweb_archive.cli.main import cli
from tests import ports
from tests.conftest import tree
from tests.reference import reference_files


def test_convert_summary_and_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    archive = tmp_path / "archive"
    ok = runner.invoke(
        cli, ["convert", get_testdata_file("CT_small.dcm"), "-o", str(archive), "-w", "1"]
    )
    assert ok.exit_code == 0, ok.output
    assert "1 converted" in ok.output and "1 studies" in ok.output

    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"hello")
    result = runner.invoke(
        cli,
        [
            "convert",
            str(bad),
            get_testdata_file("CT_small.dcm"),
            "-o",
            str(archive),
            "--json",
            "-w",
            "1",
        ],
    )
    assert result.exit_code == 1
    summary = orjson.loads(result.stdout)
    assert summary["unchanged"] == 1 and summary["failed"] == 1
    assert summary["failures"] == [
        {"input": str(bad), "reason": "not a DICOM file (no 'DICM' prefix and no dataset)"}
    ]
    failure_lines = [line for line in result.stderr.splitlines() if line.startswith("failed:")]
    assert failure_lines == [f"failed: {bad}: not a DICOM file (no 'DICM' prefix and no dataset)"]


def test_option_mismatch_is_one_line_and_exit_1(tmp_path: Path) -> None:
    runner = CliRunner()
    archive = tmp_path / "archive"
    source = get_testdata_file("MR_small.dcm")
    assert runner.invoke(cli, ["convert", source, "-o", str(archive), "-w", "1"]).exit_code == 0
    result = runner.invoke(cli, ["convert", source, "-o", str(archive), "--frames", "raw"])
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: ")
    assert "frames: archive has 'multipart', asked for 'raw'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["convert", "-o", str(tmp_path)]).exit_code == 2
    assert (
        runner.invoke(cli, ["convert", "x", "-o", str(tmp_path), "--workers", "0"]).exit_code == 2
    )
    for where in (
        ["--scheduler", "tcp://127.0.0.1:1", "--local-cluster", "2"],
        ["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"],
        ["--local-cluster", "0"],
    ):
        result = runner.invoke(cli, ["convert", "x", "-o", str(tmp_path / "a"), *where])
        assert result.exit_code == 2, where
    assert not (tmp_path / "a").exists()


def _without_timing(output: str) -> list[str]:
    """The lines of a run's report, its time and speed left out (they vary)."""
    return [
        re.sub(r" in [0-9.]+ s \([0-9,]+ instances/s\)", "", line) for line in output.splitlines()
    ]


def test_on_a_dask_cluster_the_report_and_archive_of_one_core(
    tmp_path: Path, dask_cluster: Any
) -> None:
    """Same lines, same exit status, same bytes as ``dwa convert -w 1``.

    The reference files hold copies of one SOP Instance UID with other content:
    the copies' replay in input order is the overwrite policy's (the last wins).
    """
    inputs = [str(path) for path in reference_files() if path.parent.name == "test_files"]
    inputs += ["--on-duplicate", "overwrite"]
    runner = CliRunner()
    here = runner.invoke(cli, ["convert", *inputs, "-o", str(tmp_path / "a"), "-w", "1"])
    there = runner.invoke(
        cli, ["convert", *inputs, "-o", str(tmp_path / "b"), "--scheduler", dask_cluster.address]
    )
    assert here.exit_code == there.exit_code == 1  # some inputs fail
    assert "failed: " in here.stderr and "replaced: " in here.stdout
    assert _without_timing(there.stdout.replace(str(tmp_path / "b"), str(tmp_path / "a"))) == (
        _without_timing(here.stdout)
    )
    assert sorted(there.stderr.splitlines()) == sorted(here.stderr.splitlines())
    assert tree(tmp_path / "b") == tree(tmp_path / "a")


def test_a_local_cluster_of_worker_processes(tmp_path: Path) -> None:
    inputs = [get_testdata_file(name) for name in ("CT_small.dcm", "MR_small.dcm")]
    runner = CliRunner()
    here = runner.invoke(cli, ["convert", *inputs, "-o", str(tmp_path / "a"), "-w", "1"])
    there = runner.invoke(
        cli, ["convert", *inputs, "-o", str(tmp_path / "b"), "--local-cluster", "2", "--json"]
    )
    assert here.exit_code == there.exit_code == 0, there.output
    assert orjson.loads(there.stdout)["converted"] == 2
    assert tree(tmp_path / "b") == tree(tmp_path / "a")


def test_a_scheduler_that_is_not_there_is_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 1)
    with ports.reserved_port() as port:  # refused: nothing can listen there meanwhile
        address = f"tcp://127.0.0.1:{port}"
        result = CliRunner().invoke(
            cli,
            [
                "convert",
                get_testdata_file("CT_small.dcm"),
                "-o",
                str(tmp_path / "a"),
                "--scheduler",
                address,
            ],
        )
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach the Dask scheduler at {address}")
    assert not (tmp_path / "a").exists()
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_url_without_a_store_is_refused_not_made_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli, ["convert", get_testdata_file("CT_small.dcm"), "-o", "https://host/archive"]
    )
    assert result.exit_code == 2
    assert "https:// archives are not supported" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_deidentify_with_a_key_file(tmp_path: Path) -> None:
    runner = CliRunner()
    key = tmp_path / "key"
    args = ["convert", get_testdata_file("CT_small.dcm"), "-w", "1", "--json"]
    args += ["--deidentify", "basic,retain-long-modified-dates", "--key", str(key)]
    first = runner.invoke(cli, [*args, "-o", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    assert f"created the de-identification key {key}" in first.stderr
    again = runner.invoke(cli, [*args, "-o", str(tmp_path / "b")])
    assert again.exit_code == 0 and "created" not in again.stderr
    studies = [orjson.loads(r.stdout)["studies"] for r in (first, again)]
    assert studies[0] == studies[1] and studies[0][0].startswith("2.25.")
    key.write_text("another secret, long enough\n")
    other = runner.invoke(cli, [*args, "-o", str(tmp_path / "c")])
    assert orjson.loads(other.stdout)["studies"] != studies[0]


def test_burned_in_annotation_fails_the_input_unless_allowed(tmp_path: Path) -> None:
    import pydicom

    source = tmp_path / "us.dcm"
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.Modality = "US"
    ds.save_as(source)
    runner = CliRunner()
    args = ["convert", str(source), "-w", "1", "--deidentify", "basic"]
    args += ["--key", str(tmp_path / "key")]
    refused = runner.invoke(cli, [*args, "-o", str(tmp_path / "a")])
    assert refused.exit_code == 1
    assert (
        f"{source}: Burned In Annotation (0028,0301) is not given and US images often carry "
        "text in their pixels" in refused.output
    )
    allowed = runner.invoke(cli, [*args, "--allow-burned-in", "-o", str(tmp_path / "b")])
    assert allowed.exit_code == 0, allowed.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--deidentify", "basic"], "--deidentify needs --key FILE"),
        (["--deidentify", "strict"], "a profile starts with 'basic'"),
        (["--key", "k"], "--key and --allow-burned-in go with --deidentify"),
        (["--transform", "no_such_module:f"], "transform no_such_module:f: cannot be loaded"),
    ],
)
def test_dataset_option_usage_errors(tmp_path: Path, extra: list[str], message: str) -> None:
    source = get_testdata_file("CT_small.dcm")
    result = CliRunner().invoke(cli, ["convert", source, "-o", str(tmp_path / "a"), *extra])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "a").exists()


def test_on_duplicate_reject_then_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    archive = tmp_path / "archive"
    source = get_testdata_file("CT_small.dcm")
    assert runner.invoke(cli, ["convert", source, "-o", str(archive), "-w", "1"]).exit_code == 0
    ds = pydicom.dcmread(source)
    ds.StudyInstanceUID = "1.2.3.4"  # the same SOP Instance UID in another study
    moved = tmp_path / "moved.dcm"
    ds.save_as(moved)
    refused = runner.invoke(cli, ["convert", str(moved), "-o", str(archive), "-w", "1"])
    assert refused.exit_code == 1
    assert f"is stored already in study {pydicom.dcmread(source).StudyInstanceUID}" in (
        refused.output
    )
    assert "0 converted, 0 updated, 0 unchanged, 0 skipped, 1 failed" in refused.output
    replaced = runner.invoke(
        cli,
        ["convert", str(moved), "-o", str(archive), "-w", "1", "--on-duplicate", "overwrite"],
    )
    assert replaced.exit_code == 0, replaced.output
    assert "0 converted, 1 updated" in replaced.output
    assert f"replaced: {moved}: replaced instance {ds.SOPInstanceUID} stored in study" in (
        replaced.output
    )
    assert sorted(p.name for p in (archive / "studies").iterdir()) == ["1.2.3.4", "index.json.gz"]


def test_a_plain_conversion_imports_neither_pydicom_nor_numpy(tmp_path: Path) -> None:
    """Explicit VR Little Endian files take the fast path from start to end
    (parsing, frames, the study refresh): pydicom and numpy, a third of a
    second of start-up, are imported by the first input that needs them only.
    """
    from dicomweb_archive.demo.samples import write_ct_series

    write_ct_series(tmp_path / "ct", slices=3, rows=16, columns=16)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    command = [sys.executable, "-X", "importtime", "-m", "dicomweb_archive.cli", "convert"]
    done = subprocess.run(
        [*command, str(tmp_path / "ct"), "-o", str(tmp_path / "archive"), "-q", "-w", "1"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    imported = {line.rpartition("|")[2].strip() for line in done.stderr.splitlines()}
    assert "dicomweb_archive.p10.explicit" in imported
    assert not {name.partition(".")[0] for name in imported} & {"pydicom", "numpy"}
    instances = (tmp_path / "archive" / "studies").glob("*/series/*/instances/*/metadata.gz")
    assert len(list(instances)) == 3
