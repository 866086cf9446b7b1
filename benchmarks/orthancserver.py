"""An Orthanc on loopback holding given P10 files, for ``viewer.py``: Debian's
``orthanc`` with ``orthanc-dicomweb`` (installed when missing), with a
configuration and storage of its own."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from serve import apt_install, ensure_program, free_port

ORTHANC_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


@contextlib.contextmanager
def orthanc(storage: Path, files: list[Path]) -> Iterator[str]:
    """Orthanc on loopback with its own configuration and storage, holding ``files``."""
    binary = ensure_program("Orthanc", "orthanc")
    if not ORTHANC_PLUGIN.exists():
        apt_install("orthanc-dicomweb")
    shutil.rmtree(storage, ignore_errors=True)
    storage.mkdir(parents=True)
    port = free_port()
    config = {
        "Name": "benchmark",
        "StorageDirectory": str(storage / "db"),
        "IndexDirectory": str(storage / "db"),
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "Plugins": [str(ORTHANC_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }
    (storage / "orthanc.json").write_text(json.dumps(config, indent=1))
    with open(storage / "orthanc.log", "wb") as log:
        process = subprocess.Popen(
            [binary, str(storage / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT
        )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{origin}/system", timeout=5).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"Orthanc did not start: {storage / 'orthanc.log'}") from None
                time.sleep(0.2)
        for path in files:
            request = urllib.request.Request(
                f"{origin}/instances", data=path.read_bytes(), method="POST"
            )
            urllib.request.urlopen(request, timeout=60).read()
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=60)


def orthanc_version() -> str:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "orthanc"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "?"
