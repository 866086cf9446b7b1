"""A ``dwa serve`` killed during a STOW-RS replacing instances: a rerun ends as a clean run."""

from __future__ import annotations

import contextlib
import os
import random
import signal
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.uid import generate_uid
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store.directory import DirectoryStore
from dicomweb_archive.store.staging import STAGING_DIR
from tests.conftest import snapshot, write_instance
from tests.server.live import dwa_serve

MULTIPART = 'multipart/related; type="application/dicom"; boundary=stow-kill'


def _body(files: list[Path]) -> bytes:
    out = b""
    for path in files:
        out += b"\r\n--stow-kill\r\nContent-Type: application/dicom\r\n\r\n" + path.read_bytes()
    return out + b"\r\n--stow-kill--\r\n"


def _versions(tmp_path: Path, count: int) -> tuple[list[Path], list[Path]]:
    study, series = generate_uid(), generate_uid()
    first, second = [], []
    for n in range(count):
        common = {"study": study, "series": series, "sop": generate_uid(), "rows": 128}
        first.append(write_instance(tmp_path / "first", instance_number=n + 1, frames=3, **common))  # type: ignore[arg-type]
        second.append(
            write_instance(tmp_path / "second", instance_number=n + 2, frames=2, **common)
        )  # type: ignore[arg-type]
    return first, second


def _served(archive: Path) -> dict[str, bytes]:
    return {name: data for name, (_, data) in snapshot(archive).items()}


@pytest.mark.parametrize("seed", [1, 2])
def test_a_killed_stow_is_made_whole_by_the_next(tmp_path: Path, seed: int) -> None:
    first, second = _versions(tmp_path, 30)
    body = _body(second)
    headers = {"Content-Type": MULTIPART}
    reference, archive = tmp_path / "reference", tmp_path / "archive"
    for root in (reference, archive):
        assert Converter(root, ConvertOptions(workers=1)).convert([str(p) for p in first]).ok
    with TestClient(create_app(reference, on_duplicate="overwrite")) as client:
        assert client.post("/dicomweb/studies", content=body, headers=headers).status_code == 200
    delays = random.Random(seed)
    for _round in range(2):
        # Its own session: the kill takes the server and anything it started.
        options = ("--on-duplicate", "overwrite")
        with dwa_serve(archive, *options, start_new_session=True) as (root, pid):
            # Answering already (however long its first answer took): the kill is timed from here.
            url = f"{root}/studies"
            killer = delays.uniform(0.05, 0.8)
            with contextlib.suppress(requests.RequestException):  # still storing
                requests.post(url, data=body, headers=headers, timeout=killer)
            os.killpg(pid, signal.SIGKILL)
    with TestClient(create_app(archive, on_duplicate="overwrite")) as client:
        assert client.post("/dicomweb/studies", content=body, headers=headers).status_code == 200
    assert _served(archive) == _served(reference)
    staging = archive / STAGING_DIR
    assert not staging.exists() or not any(staging.iterdir())


class Killed(BaseException):
    """A process dying at this point (no handler catches it)."""


def test_a_killed_commit_is_finished_when_the_server_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server killed after an instance's commit point, with no STOW after it: the
    next start finishes the instance before serving, and its documents follow."""
    first, second = _versions(tmp_path, 3)
    body = _body(second[:1])
    headers = {"Content-Type": MULTIPART}
    reference, archive = tmp_path / "reference", tmp_path / "archive"
    for root in (reference, archive):
        assert Converter(root, ConvertOptions(workers=1)).convert([str(p) for p in first]).ok
    with TestClient(create_app(reference, on_duplicate="overwrite")) as client:
        assert client.post("/dicomweb/studies", content=body, headers=headers).status_code == 200
    real_move = DirectoryStore.move

    def move_then_die(self: DirectoryStore, source: str, target: str) -> None:
        if "~frames~" not in source:  # the first frame moved, then the process dies
            raise Killed
        real_move(self, source, target)

    monkeypatch.setattr(DirectoryStore, "move", move_then_die)
    client = TestClient(
        create_app(archive, on_duplicate="overwrite"), raise_server_exceptions=False
    )
    with contextlib.suppress(Killed):  # the STOW's own answer does not matter here
        client.post("/dicomweb/studies", content=body, headers=headers)
    monkeypatch.setattr(DirectoryStore, "move", real_move)
    assert any((archive / STAGING_DIR).iterdir())  # committed, not applied
    with TestClient(create_app(archive)) as client:
        sop = second[0].stem
        metadata = client.get(f"/dicomweb/studies/{_study(first[0])}/metadata").json()
        numbers = {d["00080018"]["Value"][0]: d["00200013"]["Value"][0] for d in metadata}
        assert numbers[sop] == 2  # the new version, at once
    assert _served(archive) == _served(reference)
    staging = archive / STAGING_DIR
    assert not staging.exists() or not any(staging.iterdir())


def _study(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
