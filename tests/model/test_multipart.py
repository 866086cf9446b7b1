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
