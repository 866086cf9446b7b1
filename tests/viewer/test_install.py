"""Fetching the OHIF build with npm, and finding it again."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from dicomweb_archive.errors import DicomwebArchiveError
from dicomweb_archive.viewer import install as installer
from dicomweb_archive.viewer.install import OHIF_VERSION, find_dist, install


def tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``npm`` on PATH whose ``pack`` leaves a package tarball; its calls logged."""
    package = tarball(
        tmp_path / "package.tgz",
        {"package/package.json": b"{}", "package/dist/index.html": b"<title>OHIF</title>"},
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    log = tmp_path / "npm.log"
    npm.write_text(f'#!/bin/sh\necho "$@" >> {log}\ncp {package} ./ohif-app-{OHIF_VERSION}.tgz\n')
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_install_unpacks_the_package_once(fake_npm: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    dist = install(cache)
    assert dist == cache / "package" / "dist"
    assert (dist / "index.html").read_bytes() == b"<title>OHIF</title>"
    assert (cache / f".installed-{OHIF_VERSION}").is_file()
    assert fake_npm.read_text() == f"pack --silent @ohif/app@{OHIF_VERSION}\n"
    # Nothing left behind but the package and its stamp.
    assert sorted(p.name for p in cache.iterdir()) == [f".installed-{OHIF_VERSION}", "package"]
    install(cache)
    assert len(fake_npm.read_text().splitlines()) == 1


def test_another_version_replaces_the_old(fake_npm: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    install(cache, "1.0.0")
    install(cache)
    assert [p.name for p in cache.glob(".installed-*")] == [f".installed-{OHIF_VERSION}"]


def test_without_npm_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DicomwebArchiveError, match="npm is not installed"):
        install(tmp_path / "cache")


def test_a_failing_npm_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    npm = tmp_path / "npm"
    npm.write_text("#!/bin/sh\necho 'E404 not found' >&2\nexit 1\n")
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DicomwebArchiveError, match="E404 not found"):
        install(tmp_path / "cache")
    assert not (tmp_path / "cache" / "package").exists()


def test_find_dist_accepts_the_cache_the_package_or_dist(tmp_path: Path) -> None:
    dist = tmp_path / "cache" / "package" / "dist"
    dist.mkdir(parents=True)
    (dist / "index.html").write_text("x")
    for location in (tmp_path / "cache", dist.parent, dist):
        assert find_dist(location) == dist
    assert find_dist(tmp_path / "elsewhere") is None


def test_auto_is_the_default_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert installer.default_cache() == tmp_path / "dicomweb-archive" / "ohif"
    assert find_dist("auto") is None
    dist = installer.default_cache() / "package" / "dist"
    dist.mkdir(parents=True)
    (dist / "index.html").write_text("x")
    assert find_dist("auto") == dist
