"""A real ``dwa listen`` process on a free loopback port, for real DIMSE clients."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests import ports

AE_TITLE = "DWA"


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
    """Run ``dwa listen ARCHIVE --port 0 OPTIONS`` until the block ends.

    It takes a free port itself and says which in its first line, ``listening
    as AE on HOST:PORT``: no other process can take the port between a probe
    and its bind.
    """
    if log is None:
        handle, name = tempfile.mkstemp(prefix="listen-", suffix=".log", dir=archive.parent)
        os.close(handle)
        log = Path(name)
    command = [sys.executable, "-m", "dicomweb_archive.cli", "listen", str(archive)]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [*command, "--port", "0", *options], stdout=output, stderr=subprocess.STDOUT
        )
    try:
        said = ports.announced(
            r"^listening as \S+ on \S+:(\d+) ",
            process,
            functools.partial(log.read_text, errors="replace"),
        )
        yield Listening(int(said[1]), archive, log, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


def run(*command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A DCMTK client's run, its output (both streams) kept as text."""
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
