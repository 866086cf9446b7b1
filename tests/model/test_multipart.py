from __future__ import annotations

import pytest

from dicomweb_archive.model import multipart


def test_stored_body_layout() -> None:
    body = multipart.header("image/jphc; transfer-syntax=1.2.840.10008.1.2.4.202", "a/frames/1")
    body += b"\xff\x4f\xff\x51payload" + multipart.TRAILER
    text = body.decode("latin-1")
    assert text.startswith(f"--{multipart.BOUNDARY}\r\nContent-Type: image/jphc; transfer-syntax=")
    assert "\r\nContent-Location: a/frames/1\r\n\r\n\xff\x4f" in text
    assert text.endswith(f"payload\r\n--{multipart.BOUNDARY}--\r\n")
    assert "\n" not in text.replace("\r\n", "")
    headers, payload = multipart.unwrap(body)
    assert payload == b"\xff\x4f\xff\x51payload"
    assert headers["content-location"] == "a/frames/1"
    with pytest.raises(ValueError):
        multipart.unwrap(body[:-3])


def test_delimiter_detection() -> None:
    assert multipart.contains_delimiter(b"x\r\n--" + multipart.BOUNDARY.encode())
    assert not multipart.contains_delimiter(b"--other\r\n")
    assert "boundary=" in multipart.response_content_type("application/octet-stream")


@pytest.mark.parametrize("memmem", [True, False], ids=["memmem", "in"])
def test_delimiter_anywhere_in_a_frame(memmem: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found wherever it lies in half a megabyte, with the C search or without."""
    if memmem:
        assert multipart._MEMMEM is not None  # the C library of the machines tested
    else:
        monkeypatch.setattr(multipart, "_MEMMEM", None)
    delimiter = f"\r\n--{multipart.BOUNDARY}".encode()
    frame = bytes(range(256)) * 2048
    assert not multipart.contains_delimiter(frame)
    assert not multipart.contains_delimiter(frame + delimiter[:-1])
    assert not multipart.contains_delimiter(b"")
    for place in (0, 1, 4097, len(frame) - 1, len(frame)):
        with_it = frame[:place] + delimiter + frame[place:]
        assert multipart.contains_delimiter(with_it), place
        assert multipart.contains_delimiter(bytearray(with_it)), place
    # At the very start, the CRLF before it is the part header's.
    assert multipart.contains_delimiter(delimiter[2:] + frame)
    assert not multipart.contains_delimiter(delimiter[3:] + frame)
