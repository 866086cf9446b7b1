"""OHIF's configuration for the viewer served beside the archive."""

from __future__ import annotations

import orjson

from dicomweb_archive.viewer.config import (
    PROGRESSIVE_URL,
    app_config_script,
    progressive_extension,
)


def config(dicomweb_root: str, *, progressive: bool) -> dict[str, object]:
    script = app_config_script(dicomweb_root, progressive=progressive)
    assert script.startswith(b"window.config = ") and script.endswith(b";\n")
    document: dict[str, object] = orjson.loads(script[len(b"window.config = ") : -2])
    return document


def test_one_data_source_on_this_server() -> None:
    document = config("/dicomweb", progressive=False)
    [source] = document["dataSources"]  # type: ignore[misc]
    assert document["defaultDataSourceName"] == source["sourceName"]
    settings = source["configuration"]
    assert settings["qidoRoot"] == settings["wadoRoot"] == "/dicomweb"
    assert settings["thumbnailRendering"] == "thumbnail"
    assert "progressiveLoading" not in settings
    assert document["extensions"] == []


def test_progressive_loading_lists_the_extension() -> None:
    document = config("/dicomweb", progressive=True)
    assert document["extensions"] == [PROGRESSIVE_URL]
    [source] = document["dataSources"]  # type: ignore[misc]
    assert source["configuration"]["progressiveLoading"] is True


def test_the_extension_ships_in_the_package() -> None:
    assert b"export default" in progressive_extension()
