from __future__ import annotations

import os

import pytest

from dicomweb_archive.errors import MalformedMultipartError
from dicomweb_archive.server.stow.multipart_parser import (
    Event,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    check_boundary,
)


def _parse(
    body: bytes, boundary: str, chunk: int | None = None
) -> list[tuple[dict[str, str], bytes]]:
    """Every part's headers and payload, feeding ``body`` in pieces of ``chunk``."""
    parser = MultipartParser(boundary)
    step = chunk or len(body) or 1
    events: list[Event] = []
    for start in range(0, len(body), step):
        events.extend(parser.feed(body[start : start + step]))
    parser.close()
    parts: list[tuple[dict[str, str], bytes]] = []
    payload = bytearray()
    headers: dict[str, str] | None = None
    for event in events:
        if isinstance(event, PartStart):
            assert headers is None
            headers, payload = event.headers, bytearray()
        elif isinstance(event, PartData):
            assert headers is not None and event.data
            payload += event.data
        else:
            assert isinstance(event, PartEnd) and headers is not None
            parts.append((headers, bytes(payload)))
            headers = None
    assert headers is None
    return parts


PAYLOADS = [b"DICM" + bytes(range(256)), b"", b"\r\n--notquite\r\n\r\n", b"x\r"]


def _body(boundary: str, newline: bytes = b"\r\n", preamble: bytes = b"") -> bytes:
    out = preamble
    for payload in PAYLOADS:
        out += b"--" + boundary.encode() + newline
        out += b"Content-Type: application/dicom" + newline + newline + payload + newline
    return out + b"--" + boundary.encode() + b"--" + newline + b"epilogue"


@pytest.mark.parametrize("chunk", [None, 1, 2, 3, 7, 64])
@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_parts_survive_any_chunking(chunk: int | None, newline: bytes) -> None:
    body = _body("notquite-the-boundary", newline, preamble=b"ignored preamble" + newline)
    parts = _parse(body, "notquite-the-boundary", chunk)
    assert [p for _, p in parts] == PAYLOADS
    assert all(h == {"content-type": "application/dicom"} for h, _ in parts)


def test_dicomweb_client_framing() -> None:
    # dicomweb-client opens with CRLF and sends nothing after the close delimiter.
    body = (
        b"\r\n--b\r\nContent-Type: application/dicom\r\n\r\nA"
        b"\r\n--b\r\nContent-Type: x\r\n\r\nB\r\n--b--"
    )
    assert _parse(body, "b") == [
        ({"content-type": "application/dicom"}, b"A"),
        ({"content-type": "x"}, b"B"),
    ]


def test_boundary_text_inside_a_payload_is_payload() -> None:
    payload = b"x\r\n--bbX\r\n--bb-x\r\n--b\r\n--bb\t-"
    body = b"--bb\r\n\r\n" + payload + b"\r\n--bb  \t\r\n\r\nlast\r\n--bb--\r\n"
    assert _parse(body, "bb", 1) == [({}, payload), ({}, b"last")]


def test_large_part_is_streamed_in_bounded_pieces() -> None:
    payload = os.urandom(4 * 1024 * 1024)
    body = b"--b\r\n\r\n" + payload + b"\r\n--b--\r\n"
    parser = MultipartParser("b")
    received = bytearray()
    chunk = 64 * 1024
    for start in range(0, len(body), chunk):
        for event in parser.feed(body[start : start + chunk]):
            if isinstance(event, PartData):
                assert len(event.data) <= chunk + 8
                received += event.data
    parser.close()
    assert received == payload


def test_headers_are_parsed_per_rfc() -> None:
    body = (
        b"--b\r\nContent-Type: application/dicom;\r\n transfer-syntax=1.2.840.10008.1.2.1\r\n"
        b"content-location: a\r\nContent-Location: b\r\n\r\nX\r\n--b--"
    )
    [(headers, payload)] = _parse(body, "b")
    assert headers == {
        "content-type": "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
        "content-location": "a, b",
    }
    assert payload == b"X"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"no delimiter at all",
        b"--b\r\n\r\npart without an end",
        b"--b\r\n\r\nA\r\n--b\r\n",
        b"--b\r\n\r\nA\r\n--b",
    ],
)
def test_truncated_bodies_are_refused(body: bytes) -> None:
    parser = MultipartParser("b")
    parser.feed(body)
    with pytest.raises(MalformedMultipartError, match="without a close delimiter"):
        parser.close()


def test_bad_headers_are_refused() -> None:
    with pytest.raises(MalformedMultipartError, match="Name: value"):
        MultipartParser("b").feed(b"--b\r\nnot a header\r\n\r\nA\r\n--b--")
    parser = MultipartParser("b", max_header_bytes=100)
    with pytest.raises(MalformedMultipartError, match="exceed 100 bytes"):
        parser.feed(b"--b\r\nX-Long: " + b"a" * 200)


def test_a_body_without_parts() -> None:
    parser = MultipartParser("b")
    assert parser.feed(b"--b--\r\n") == []
    parser.close()
    assert parser.complete and parser.parts == 0
    assert parser.feed(b"anything after the end") == []


@pytest.mark.parametrize("boundary", ["", "x" * 201, "tab\there", "trailing ", "é"])
def test_invalid_boundaries(boundary: str) -> None:
    with pytest.raises(MalformedMultipartError):
        check_boundary(boundary)
