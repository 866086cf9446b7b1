"""``dwa listen``: its options checked before anything listens; the real command runs."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from dicomweb_archive.cli.main import cli
from dicomweb_archive.demo.samples import write_multiframe
from tests.dimse.live import dwa_listen


def test_a_bad_peers_file_ends_with_its_reason(tmp_path: Path) -> None:
    peers = tmp_path / "peers.toml"
    peers.write_text("[peers.VIEWER]\nhost = 'h'\n")
    result = CliRunner().invoke(cli, ["listen", str(tmp_path / "a"), "--peers", str(peers)])
    assert result.exit_code == 2
    assert "[peers.VIEWER] needs exactly host and port" in result.output


def test_a_bad_ae_title_ends_with_its_reason(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["listen", str(tmp_path / "a"), "--allow-ae", "A" * 17])
    assert result.exit_code == 2
    assert "is not an AE title" in result.output


def test_the_real_command_listens_logs_and_stops(tmp_path: Path) -> None:
    peers = tmp_path / "peers.toml"
    peers.write_text("allow = ['PINGER']\n[peers.VIEWER]\nhost = '127.0.0.1'\nport = 104\n")
    with dwa_listen(tmp_path / "archive", "--peers", str(peers), "--ae-title", "DWA") as running:
        log = running.log_text()
        assert "listening as DWA on 127.0.0.1:" in log
        assert "(calling AEs: PINGER; peers: VIEWER)" in log
        done = subprocess.run(
            ["echoscu", "-aet", "PINGER", "-aec", "DWA", "127.0.0.1", str(running.port)],
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0
        running.wait_for_log("association 1 from PINGER@127.0.0.1")
        running.wait_for_log("released after")
    assert running.process.returncode == 0
    assert "stopping" in running.log_text()
    assert (tmp_path / "archive" / "manifest.json").exists()


def test_a_data_set_over_max_dataset_size_is_refused_with_the_reason(tmp_path: Path) -> None:
    large = write_multiframe(tmp_path / "mf.dcm", frames=9, rows=256, columns=256)
    small = write_multiframe(tmp_path / "mf2.dcm", frames=7, rows=256, columns=256, seed=1)
    with dwa_listen(tmp_path / "archive", "--max-dataset-size", "1M") as running:
        port = str(running.port)
        refused = subprocess.run(
            ["storescu", "-v", "-aec", "DWA", "127.0.0.1", port, str(large)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert "Refused: OutOfResources" in refused.stdout + refused.stderr
        running.wait_for_log("failed (0xA700): the data set exceeds the limit of 1048576 bytes")
        stored = subprocess.run(
            ["storescu", "-aec", "DWA", "127.0.0.1", port, str(small)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert stored.returncode == 0, stored.stdout + stored.stderr
        running.wait_for_log("1 stored")


def test_a_bad_max_dataset_size_ends_with_its_reason(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["listen", str(tmp_path / "a"), "--max-dataset-size", "lots"])
    assert result.exit_code == 2
    assert "'lots' is not a size such as 2G" in result.output


def test_a_port_taken_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "dicomweb_archive.cli", "listen", str(tmp_path / "a")]
            + ["--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert done.stderr == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
