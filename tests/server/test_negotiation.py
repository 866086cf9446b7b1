"""Which rendition each Accept value real clients send gets."""

from __future__ import annotations

import pytest

from dicomweb_archive.errors import UnsupportedTransferSyntaxError
from dicomweb_archive.media import parse_accept
from dicomweb_archive.server.negotiation import (
    Rendition,
    Stored,
    choose_instances,
    choose_pixels,
)

EVRLE = "1.2.840.10008.1.2.1"
RLE = "1.2.840.10008.1.2.5"
J2K = "1.2.840.10008.1.2.4.90"


def _pixels(accept: str, syntax: str = RLE, media: str = "image/dicom-rle") -> Rendition:
    return choose_pixels(
        parse_accept([accept]) if accept else [],
        stored=[Stored(media, syntax)],
        decodable=syntax != "1.2.840.10008.1.2.4.100",
        single_part=True,
    )


STORED_RLE = Rendition(True, "image/dicom-rle", RLE, 0)
DECODED = Rendition(True, "application/octet-stream", EVRLE, -1)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", STORED_RLE),
        ("*/*", STORED_RLE),
        # OHIF, unquoted and quoted; Cornerstone's loader.
        ("multipart/related; type=application/octet-stream; transfer-syntax=*", STORED_RLE),
        ('multipart/related; type="application/octet-stream"; transfer-syntax="*"', STORED_RLE),
        # dicomweb-client's defaults for frames.
        ('multipart/related; type="*/*"', STORED_RLE),
        ('multipart/related; type="application/dicom"', DECODED),
        # PS3.18: application/octet-stream without a syntax is Explicit VR Little Endian.
        ('multipart/related; type="application/octet-stream"', DECODED),
        (f'multipart/related; type="image/dicom-rle"; transfer-syntax={RLE}', STORED_RLE),
        ('multipart/related; type="image/x-dicom-rle"', STORED_RLE),
        # Preference order by q-value.
        (
            'multipart/related; type="application/octet-stream"; q=0.5, '
            'multipart/related; type="image/dicom-rle"',
            STORED_RLE,
        ),
        ("application/octet-stream", Rendition(False, "application/octet-stream", EVRLE, -1)),
        ("image/dicom-rle", Rendition(False, "image/dicom-rle", RLE, 0)),
    ],
)
def test_frames(accept: str, expected: Rendition) -> None:
    assert _pixels(accept) == expected


@pytest.mark.parametrize(
    "accept",
    [
        'multipart/related; type="image/jpeg"',
        f'multipart/related; type="image/jp2"; transfer-syntax={J2K}',
        "image/png",
        "application/dicom+json",
    ],
)
def test_not_acceptable(accept: str) -> None:
    with pytest.raises(UnsupportedTransferSyntaxError) as refused:
        _pixels(accept)
    # A 406 names what there is, never the request back as "acceptable".
    offered = str(refused.value)
    assert offered.startswith("available: ")
    assert 'multipart/related; type="image/dicom-rle"; transfer-syntax=' + RLE in offered
    assert f'type="application/octet-stream"; transfer-syntax={EVRLE}' in offered
    assert accept not in offered


def test_not_acceptable_instances_name_the_forms_there_are() -> None:
    with pytest.raises(UnsupportedTransferSyntaxError) as refused:
        choose_instances(parse_accept(["image/png"]), single_instance=False)
    assert str(refused.value).startswith('available: multipart/related; type="application/dicom"')
    assert "image/png" not in str(refused.value)


def test_undecodable_frames_only_as_stored() -> None:
    mpeg = "1.2.840.10008.1.2.4.100"
    with pytest.raises(UnsupportedTransferSyntaxError):
        _pixels('multipart/related; type="application/octet-stream"', mpeg, "video/mpeg2")
    assert _pixels("*/*", mpeg, "video/mpeg2").stored


def test_frame_lists_are_multipart_only() -> None:
    ranges = parse_accept(["application/octet-stream"])
    with pytest.raises(UnsupportedTransferSyntaxError):
        choose_pixels(
            ranges,
            stored=[Stored("application/octet-stream", EVRLE)],
            decodable=True,
            single_part=False,
        )


@pytest.mark.parametrize(
    ("accept", "single", "form", "syntax"),
    [
        ("", False, "multipart", EVRLE),
        ('multipart/related; type="application/dicom"', False, "multipart", EVRLE),
        ('multipart/related; type="application/dicom"; transfer-syntax=*', False, "multipart", "*"),
        ("application/dicom", True, "single", EVRLE),
        ("application/zip", False, "zip", EVRLE),
        ("application/zip; transfer-syntax=*", False, "zip", "*"),
        (f"application/zip; transfer-syntax={EVRLE}", False, "zip", EVRLE),
        ("*/*", False, "multipart", EVRLE),
    ],
)
def test_instances(accept: str, single: bool, form: str, syntax: str) -> None:
    rendition = choose_instances(parse_accept([accept]) if accept else [], single_instance=single)
    assert (rendition.form, rendition.transfer_syntax) == (form, syntax)


def test_single_part_instances_need_one_instance() -> None:
    with pytest.raises(UnsupportedTransferSyntaxError):
        choose_instances(parse_accept(["application/dicom"]), single_instance=False)


HTJ2K = "1.2.840.10008.1.2.4.202"
WITH_ALTERNATE = [Stored("image/dicom-rle", RLE), Stored("image/jphc", HTJ2K)]


@pytest.mark.parametrize(
    ("accept", "source", "multipart"),
    [
        ("", 0, True),
        ("multipart/related; type=application/octet-stream; transfer-syntax=*", 0, True),
        ('multipart/related; type="image/jphc"', 1, True),
        (f'multipart/related; type="image/jphc"; transfer-syntax={HTJ2K}', 1, True),
        ('multipart/related; type="application/octet-stream"; transfer-syntax=' + HTJ2K, 1, True),
        ("image/jphc", 1, False),
        ("image/jhc", 1, False),  # the misspelling clients send
        # Cornerstone's private syntax for a bare image/jphc is served RPCL.
        ("image/jphc; transfer-syntax=3.2.840.10008.1.2.4.96", 1, False),
        ('multipart/related; type="image/*"; transfer-syntax=' + HTJ2K, 1, True),
    ],
)
def test_htj2k_alternate(accept: str, source: int, multipart: bool) -> None:
    rendition = choose_pixels(
        parse_accept([accept]) if accept else [],
        stored=WITH_ALTERNATE,
        decodable=True,
        single_part=True,
    )
    assert (rendition.source, rendition.multipart) == (source, multipart)


def test_lossy_htj2k_is_not_lossless() -> None:
    with pytest.raises(UnsupportedTransferSyntaxError):
        choose_pixels(
            parse_accept(["image/jphc; transfer-syntax=1.2.840.10008.1.2.4.202"]),
            stored=[Stored("image/jphc", "1.2.840.10008.1.2.4.203")],
            decodable=False,
            single_part=True,
        )


def test_an_unknown_transfer_syntax_gets_the_media_types_default_with_a_warning() -> None:
    jls = "1.2.840.10008.1.2.4.80"
    stored = [Stored("image/jls", jls)]
    for accept in ["image/jls;transferSyntax=1.2.4.10008.1.2.81", 'image/jls; transfer-syntax="x"']:
        rendition = choose_pixels(
            parse_accept([accept]), stored=stored, decodable=True, single_part=True
        )
        assert (rendition.media_type, rendition.transfer_syntax) == ("image/jls", jls)
        assert rendition.warning.startswith('299 dicomweb-archive "transfer-syntax ')
    # A known syntax that the media type does not have stays a 406.
    with pytest.raises(UnsupportedTransferSyntaxError):
        choose_pixels(
            parse_accept(["image/jls; transfer-syntax=1.2.840.10008.1.2.4.90"]),
            stored=stored,
            decodable=True,
            single_part=True,
        )
