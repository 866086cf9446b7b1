"""The OHIF viewer's build: npm's ``@ohif/app`` package, fetched into a cache folder.

``@ohif/app`` ships the viewer built in ``dist/``, which needs none of the
package's npm dependencies: only that package's own tarball is fetched
(``npm pack``, which checks it against the registry's integrity hash) and
unpacked to ``{cache}/package/``.  A stamp file ``.installed-{version}`` says
which version is there.  It is never part of the project's sources.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from dicomweb_archive.errors import DicomwebArchiveError

#: The @ohif/app version the viewer is tested with (tests/browser/).
OHIF_VERSION = "3.13.2"
OHIF_PACKAGE = "@ohif/app"
#: What ``--viewer auto`` and ``dwa viewer install`` use unless told otherwise.
AUTO = "auto"
#: How to get the viewer, for the messages that say it is missing.
INSTALL_HINT = "run `dwa viewer install` (needs npm), then `dwa serve ARCHIVE --viewer auto`"


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/dicomweb-archive/ohif`` (``~/.cache/…`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dicomweb-archive" / "ohif"


def stamp(cache: Path, version: str = OHIF_VERSION) -> Path:
    return cache / f".installed-{version}"


def find_dist(location: str | os.PathLike[str]) -> Path | None:
    """The folder holding OHIF's ``index.html`` at ``location``, or ``None``.

    ``location`` is ``auto`` (the default cache), a cache folder (``…/package/dist``
    inside), an unpacked package (``…/dist``) or the ``dist`` folder itself.
    """
    root = default_cache() if str(location) == AUTO else Path(location)
    for folder in (root, root / "dist", root / "package" / "dist"):
        if (folder / "index.html").is_file():
            return folder
    return None


def install(cache: Path | None = None, version: str = OHIF_VERSION) -> Path:
    """Fetch ``@ohif/app@version`` into ``cache`` unless there; its ``dist`` folder.

    The new package replaces an older one only once completely unpacked.
    """
    cache = cache or default_cache()
    dist = cache / "package" / "dist"
    if stamp(cache, version).is_file() and (dist / "index.html").is_file():
        return dist
    npm = shutil.which("npm")
    if npm is None:
        raise DicomwebArchiveError(
            f"npm is not installed: it fetches the viewer ({OHIF_PACKAGE}@{version}); "
            "install Node.js (e.g. apt-get install npm) and try again"
        )
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as work:
        packed = subprocess.run(
            [npm, "pack", "--silent", f"{OHIF_PACKAGE}@{version}"],
            cwd=work,
            capture_output=True,
            text=True,
        )
        tarballs = list(Path(work).glob("*.tgz"))
        if packed.returncode != 0 or len(tarballs) != 1:
            raise DicomwebArchiveError(
                f"npm pack {OHIF_PACKAGE}@{version} failed (exit {packed.returncode}): "
                f"{packed.stderr.strip() or packed.stdout.strip()}"
            )
        unpacked = Path(work) / "unpacked"
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(unpacked, filter="data")
        if not (unpacked / "package" / "dist" / "index.html").is_file():
            raise DicomwebArchiveError(f"{tarballs[0].name} holds no package/dist/index.html")
        for old in cache.glob(".installed-*"):
            old.unlink()
        shutil.rmtree(cache / "package", ignore_errors=True)
        (unpacked / "package").rename(cache / "package")
    stamp(cache, version).touch()
    return dist
