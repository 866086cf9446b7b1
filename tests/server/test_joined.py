"""Several stored frames joined into one multipart body, sent a chunk at a time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dicomweb_archive.model import multipart
from dicomweb_archive.server.joined import ChangedWhileSent, Joined, Measured
from dicomweb_archive.server.responses import CHUNK_SIZE
from dicomweb_archive.store.archive import Archive, open_archive

TYPE = "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"


def _frames(root: Path, payloads: list[bytes]) -> tuple[Archive, list[Measured]]:
    reader = open_archive(root)
    measured = []
    for number, payload in enumerate(payloads, 1):
        relative = f"studies/1.2/series/1.3/instances/1.4/frames/{number}"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        body = multipart.header(TYPE, relative) + payload + multipart.TRAILER
        (root / relative).write_bytes(body)
        measured.append(Measured.of(relative, reader.locate(relative)))
    return reader, measured


def test_stored_frames_join_into_one_multipart_body(tmp_path: Path) -> None:
    payloads = [os.urandom(CHUNK_SIZE + 17), b"", os.urandom(300)]
    reader, measured = _frames(tmp_path, payloads)
    joined = Joined.stored_frames(reader, measured)
    body = b"".join(joined.chunks(0, joined.length))
    assert len(body) == joined.length
    assert body.startswith(f"--{multipart.BOUNDARY}\r\n".encode())
    assert body.endswith(multipart.TRAILER)
    pieces = body[: -len(multipart.TRAILER)].split(f"\r\n--{multipart.BOUNDARY}\r\n".encode())
    assert [p.partition(b"\r\n\r\n")[2] for p in pieces] == payloads
    assert all(len(c) <= CHUNK_SIZE for c in joined.chunks(0, joined.length))
    # Any range is the same bytes as the range of the whole.
    for start, end in [(0, 1), (10, CHUNK_SIZE + 400), (joined.length - 5, joined.length)]:
        assert b"".join(joined.chunks(start, end)) == body[start:end]
    assert joined.tag() == Joined.stored_frames(reader, measured).tag()


def test_a_frame_replaced_after_its_measure_is_not_sent(tmp_path: Path) -> None:
    reader, measured = _frames(tmp_path, [b"one", b"two"])
    joined = Joined.stored_frames(reader, measured)
    _frames(tmp_path, [b"one", b"changed"])  # rewritten after its measure
    with pytest.raises(ChangedWhileSent):
        b"".join(joined.chunks(0, joined.length))


def test_a_long_frame_list_streams_with_bounded_memory(tmp_path: Path) -> None:
    """128 frames of 512 KB from a real `dwa serve`: its memory does not grow by the body."""
    import httpx
    from pydicom.uid import generate_uid

    from dicomweb_archive import Converter, ConvertOptions
    from tests.conftest import write_instance
    from tests.server.live import dwa_serve, memory_kib

    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    frames = 128
    source = write_instance(
        tmp_path / "in", study=study, series=series, sop=sop, frames=frames, rows=512, columns=512
    )
    archive = tmp_path / "archive"
    assert Converter(archive, ConvertOptions(workers=1)).convert([str(source)]).ok
    source.unlink()
    with dwa_serve(archive) as (root, pid):
        url = f"{root}/studies/{study}/series/{series}/instances/{sop}/frames"
        httpx.get(f"{url}/1").raise_for_status()
        before = memory_kib(pid)
        every = ",".join(str(n) for n in range(1, frames + 1))
        peak, received = before, 0
        for _ in range(2):
            with httpx.stream("GET", f"{url}/{every}", timeout=60) as response:
                assert response.status_code == 200
                assert int(response.headers["content-length"]) > frames * 512 * 512 * 2
                for chunk in response.iter_bytes(1 << 20):
                    received += len(chunk)
                    peak = max(peak, memory_kib(pid))
        assert received > 2 * frames * 512 * 512 * 2
        assert peak - before < 48 * 1024, (before, peak)  # the body is 64 MB
        # A hostile list is refused before anything is read.
        repeated = httpx.get(f"{url}/{','.join(['1'] * 1000)}")
        assert repeated.status_code == 400
        assert "more than once" in repeated.json()["detail"]


def test_bare_frames_are_wrapped_in_parts(tmp_path: Path) -> None:
    """Frames stored bare (--frames raw) get their part headers as they are sent."""
    reader = open_archive(tmp_path)
    measured = []
    for number, payload in enumerate([b"first", b"second"], 1):
        relative = f"studies/1.2/series/1.3/instances/1.4/frames/{number}"
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(payload)
        measured.append(Measured.of(relative, reader.locate(relative)))
    joined = Joined.bare_frames(reader, measured, TYPE)
    body = b"".join(joined.chunks(0, joined.length))
    header = multipart.header(TYPE)
    assert body == header + b"first\r\n" + header + b"second" + multipart.TRAILER
    assert joined.length == len(body)
