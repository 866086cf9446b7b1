"""Stored files handed to the server by the descriptor the answer measured."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_testdata_file

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.server import pathsend
from dicomweb_archive.server.app import create_app
from dicomweb_archive.server.pathsend import PATHSEND, send_path, sends_paths
from dicomweb_archive.store.slices import OpenedFile

FRAME_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"


def test_only_a_server_offering_the_extension_is_sent_paths() -> None:
    assert sends_paths({"type": "http", "extensions": {PATHSEND: {}}})
    assert not sends_paths({"type": "http", "extensions": {}})
    assert not sends_paths({"type": "http"})


def test_the_path_names_the_measured_file_while_the_server_may_open_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pathsend, "HOLD_SECONDS", 0.2)
    stored = tmp_path / "frame"
    stored.write_bytes(b"old bytes")
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def scenario() -> None:
        held = OpenedFile(stored)
        await send_path(held, {"extensions": {PATHSEND: {}}}, send)
        path = sent[0]["path"]
        # A writer replaces the file: the path still names the bytes measured.
        replacement = tmp_path / "new"
        replacement.write_bytes(b"new bytes, longer")
        os.replace(replacement, stored)
        del held
        assert Path(path).read_bytes() == b"old bytes"
        await asyncio.sleep(0.4)
        # Released after the hold: the descriptor is closed (or names another file).
        with contextlib.suppress(OSError):
            assert Path(path).read_bytes() != b"old bytes"

    asyncio.run(scenario())
    assert sent[0]["type"] == PATHSEND


def _frame_messages(root: Path, url: str, extensions: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages the application sends for a frame, under a server offering ``extensions``."""
    app = create_app(root)
    messages: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"accept", FRAME_ACCEPT.encode())],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 1234),
        "extensions": extensions,
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == PATHSEND:  # opened at once, as a server does
            message = {**message, "body": Path(message["path"]).read_bytes()}
        messages.append(message)

    asyncio.run(app(scope, receive, send))
    return messages


def test_a_stored_frame_goes_by_path_with_the_same_head(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    ct = get_testdata_file("CT_small.dcm", read=True)
    assert (
        Converter(root, ConvertOptions(workers=1)).convert([get_testdata_file("CT_small.dcm")]).ok
    )
    relative = paths.frame_path(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID, 1)
    url = f"/dicomweb/{relative}"
    as_path = _frame_messages(root, url, {PATHSEND: {}})
    as_bytes = _frame_messages(root, url, {})
    assert [m["type"] for m in as_path] == ["http.response.start", PATHSEND]
    assert [m["type"] for m in as_bytes] == ["http.response.start", "http.response.body"]
    assert as_path[0] == as_bytes[0]
    assert as_path[1]["path"].startswith("/proc/self/fd/")
    assert as_path[1]["body"] == (root / relative).read_bytes()
    assert as_bytes[1]["body"] == (root / relative).read_bytes()
