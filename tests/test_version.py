"""The package's version: the one the installed distribution declares."""

from __future__ import annotations

from importlib.metadata import version

from dicomweb_archive.version import __version__


def test_the_distribution_declares_this_version() -> None:
    assert version("dicomweb-archive") == __version__
