"""``Converter`` on a real Dask cluster (two worker processes): the bytes of one core.

The inputs are every reference file (pydicom's and pydicom-data's, with their
failures, skips and copies of one instance) and a generated CT series; the
archive must equal, file for file and byte for byte (``.dwa/`` included), the
one a single-process conversion on one core makes of the same inputs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.cluster import DaskRunner
from dicomweb_archive.convert.converter import ConversionResult
from dicomweb_archive.convert.instance import InstanceOutcome
from dicomweb_archive.demo.samples import write_ct_series
from tests.conftest import snapshot, tree
from tests.reference import reference_files

Baseline = tuple[list[str], Path, ConversionResult]


def _summary(result: ConversionResult) -> dict[str, Any]:
    """The run's JSON summary without its timings (the only run-specific part)."""
    summary = result.to_json()
    del summary["seconds"], summary["instancesPerSecond"]
    return summary


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    """The inputs and their archive converted by one process on one core."""
    root = tmp_path_factory.mktemp("inputs")
    write_ct_series(root / "ct", slices=24, rows=128, columns=128)
    inputs = [str(root / "ct"), *map(str, reference_files())]
    archive = root / "one-core"
    # The reference files hold copies of one SOP Instance UID with other content:
    # the replay in input order reproduces the overwrite policy (the last wins).
    result = Converter(archive, ConvertOptions(workers=1, on_duplicate="overwrite")).convert(inputs)
    assert result.counts["converted"] > 150 and result.failures and result.updated
    return inputs, archive, result


def test_a_cluster_makes_the_bytes_of_one_core(
    baseline: Baseline, dask_client: Any, tmp_path: Path
) -> None:
    inputs, expected, one_core = baseline
    seen: list[InstanceOutcome] = []
    options = ConvertOptions(on_duplicate="overwrite")
    result = Converter(tmp_path / "archive", options, runner=DaskRunner(dask_client)).convert(
        inputs, on_outcome=seen.append
    )
    assert tree(tmp_path / "archive") == tree(expected)
    assert _summary(result) == _summary(one_core)
    assert len(seen) == len(inputs) - 1 + 24  # the progress: one per input file


def test_a_rerun_on_the_cluster_changes_nothing(
    baseline: Baseline, dask_client: Any, tmp_path: Path
) -> None:
    inputs, expected, one_core = baseline
    archive = tmp_path / "archive"
    shutil.copytree(expected, archive)
    before = snapshot(archive)
    # The CT's instances: each once among the inputs, each unchanged, untouched.
    again = Converter(archive, runner=DaskRunner(dask_client)).convert(inputs[:1])
    assert again.counts["unchanged"] == 24 and again.instances == 24
    assert snapshot(archive) == before  # not a byte, not a modification time
    # Every input: copies of one instance with different content are stored
    # again in input order, and the archive ends as it was.
    overwrite = ConvertOptions(on_duplicate="overwrite")  # as the baseline was made
    rerun = Converter(archive, overwrite, runner=DaskRunner(dask_client)).convert(inputs)
    assert [o.name for o in rerun.failures] == [o.name for o in one_core.failures]
    assert tree(archive) == tree(expected)


def test_a_worker_killed_mid_run_the_run_completes(
    dask_cluster: Any, dask_client: Any, tmp_path: Path
) -> None:
    ct = tmp_path / "ct"
    write_ct_series(ct, slices=48, rows=128, columns=128, seed=7)
    expected = Converter(tmp_path / "one-core", ConvertOptions(workers=1)).convert([str(ct)])
    victim = dask_cluster.worker_pids(dask_client)[0]
    killed: list[int] = []

    def kill_once(outcome: InstanceOutcome) -> None:
        if not killed:  # the first outcome is in: the run is under way
            dask_cluster.kill_worker(victim)
            killed.append(len(seen))
        seen.append(outcome)

    seen: list[InstanceOutcome] = []
    result = Converter(tmp_path / "archive", runner=DaskRunner(dask_client)).convert(
        [str(ct)], on_outcome=kill_once
    )
    assert killed == [0] and victim not in dask_cluster.worker_pids(dask_client)
    assert result.ok and len(seen) == 48
    # What the dead worker had stored before it died, its chunk's rerun finds
    # there: ``unchanged`` for the run, ``converted`` for one core.
    assert result.counts["converted"] + result.counts["unchanged"] == 48
    summary, one_core = _summary(result), _summary(expected)
    for status in ("converted", "unchanged"):
        del summary[status], one_core[status]
    assert summary == one_core
    assert tree(tmp_path / "archive") == tree(tmp_path / "one-core")
    dask_client.wait_for_workers(2, timeout=60)


def test_relative_paths_are_the_client_s(
    baseline: Baseline, dask_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers have working folders of their own: inputs and archive given
    relative to the client's are found, and named as given."""
    inputs, expected, _ = baseline
    ct = Path(inputs[0])
    monkeypatch.chdir(ct.parent)
    missing = os.path.join("ct", "gone.dcm")
    result = Converter("relative", runner=DaskRunner(dask_client)).convert(["ct", missing])
    assert result.counts["converted"] == 24
    assert [(o.name, o.reason) for o in result.failures] == [(missing, "no such file or folder")]
    assert (ct.parent / "relative" / "studies").is_dir()
