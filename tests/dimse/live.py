"""A real ``dwa listen`` process on a free loopback port, for real DIMSE clients."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

AE_TITLE = "DWA"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Listening:
    """A running ``dwa listen``: where it listens, and its log."""

    port: int
    archive: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text()

    def wait_for_log(self, text: str, timeout: float = 10) -> str:
        """The log once it holds ``text`` (lines are written as events happen)."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            assert time.monotonic() < deadline, f"{text!r} not in the log:\n{self.log_text()}"
            time.sleep(0.05)
        return self.log_text()


@contextlib.contextmanager
def dwa_listen(archive: Path, *options: str, log: Path | None = None) -> Iterator[Listening]:
    """Run ``dwa listen ARCHIVE --port P OPTIONS`` until the block ends."""
    port = free_port()
    log = log or archive.parent / f"listen-{port}.log"
    command = [sys.executable, "-m", "dicomweb_archive.cli", "listen", str(archive)]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port), *options], stdout=output, stderr=subprocess.STDOUT
        )
    listening = Listening(port, archive, log, process)
    try:
        listening.wait_for_log("listening as", timeout=30)
        yield listening
    finally:
        process.terminate()
        process.wait(timeout=30)


def run(*command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A DCMTK client's run, its output (both streams) kept as text."""
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
