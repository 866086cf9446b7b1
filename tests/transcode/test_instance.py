"""One instance's transcoding: stored frame bodies, and outcomes instead of exceptions."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions, uids
from dicomweb_archive.codec.htj2k import HTJ2KSettings
from dicomweb_archive.errors import MalformedDicomError
from dicomweb_archive.model import multipart, paths
from dicomweb_archive.transcode.instance import (
    TranscodeRequest,
    _payload,
    transcode_instance,
)
from dicomweb_archive.types import InstanceKey
from tests.conftest import write_instance

ALTERNATE = TranscodeRequest("alternate", HTJ2KSettings())


def _body(part_type: str, payload: bytes) -> bytes:
    return multipart.header(part_type, "studies/1/frames/1") + payload + multipart.TRAILER


def test_payload_of_a_multipart_body_names_its_transfer_syntax() -> None:
    part = multipart.content_type("image/jphc", uids.HTJ2KLossless)
    syntax, payload = _payload(_body(part, b"\xff\x4f codestream"), "fallback", raw=False)
    assert (syntax, payload) == (uids.HTJ2KLossless, b"\xff\x4f codestream")


def test_payload_of_a_native_frame_is_a_view() -> None:
    part = multipart.content_type("application/octet-stream", uids.ExplicitVRLittleEndian)
    syntax, payload = _payload(_body(part, bytes(8)), "fallback", raw=False)
    assert syntax == uids.ExplicitVRLittleEndian
    assert isinstance(payload, memoryview) and bytes(payload) == bytes(8)


def test_payload_without_a_syntax_parameter_takes_the_fallback() -> None:
    syntax, _ = _payload(_body("application/octet-stream", b"x"), "1.2.3", raw=False)
    assert syntax == "1.2.3"


def test_raw_frames_are_their_own_payload() -> None:
    assert _payload(b"bare", "1.2.3", raw=True) == ("1.2.3", b"bare")


@pytest.mark.parametrize("body", [b"", b"not a body", _body("a/b", b"x")[:-3]])
def test_incomplete_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedDicomError, match="not a complete multipart body"):
        _payload(body, "1.2.3", raw=False)


def test_an_instance_not_in_the_archive_fails_without_raising(tmp_path: Path) -> None:
    key = InstanceKey(generate_uid(), generate_uid(), generate_uid())
    outcome = transcode_instance(str(tmp_path), ALTERNATE, key)
    assert (outcome.key, outcome.status) == (key, "failed")
    assert outcome.reason == f"instance {key.sop_instance_uid} is not in the archive"


def test_alternate_then_unchanged(tmp_path: Path) -> None:
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    source = write_instance(tmp_path / "in", study=study, series=series, sop=sop, frames=2)
    archive = tmp_path / "archive"
    assert Converter(archive, ConvertOptions(workers=1)).convert([str(source)]).ok
    key = InstanceKey(study, series, sop)
    first = transcode_instance(str(archive), ALTERNATE, key)
    assert (first.status, first.frames, first.metadata_changed) == ("transcoded", 2, False)
    assert first.bytes_in == 2 * 16 * 16 * 2 and first.bytes_out > 0
    assert (archive / paths.htj2k_frame_path(study, series, sop, 2)).exists()
    again = transcode_instance(str(archive), ALTERNATE, key)
    assert (again.status, again.frames) == ("unchanged", 2)
