"""The headers a static host sends with each stored file, as an object store keeps them."""

from __future__ import annotations

from dicomweb_archive.media import DICOM_JSON
from dicomweb_archive.model import multipart
from dicomweb_archive.model.hosting import publication_order, static_headers

STUDY = "studies/1.2"
INSTANCE = f"{STUDY}/series/1.3/instances/1.4"


def _body(part_type: str) -> bytes:
    content_type = multipart.content_type(part_type, "1.2.840.10008.1.2.4.50")
    return multipart.header(content_type, "1") + b"\xff\xd8" + multipart.TRAILER


def test_dicomweb_documents_are_gzipped_dicom_json() -> None:
    for path in (
        "studies/index.json.gz",
        "studies/pages/0.json.gz",
        f"{STUDY}/index.json.gz",
        f"{STUDY}/metadata.gz",
        f"{STUDY}/series/index.json.gz",
        f"{STUDY}/series/1.3/metadata.gz",
        f"{INSTANCE}/metadata.gz",
    ):
        assert static_headers(path, b"\x1f\x8b") == {
            "Content-Type": DICOM_JSON,
            "Content-Encoding": "gzip",
            "Cache-Control": "no-cache",
        }


def test_frames_and_bulk_data_name_their_part_type_and_boundary() -> None:
    expected = f'multipart/related; type="image/jpeg"; boundary={multipart.BOUNDARY}'
    for path in (f"{INSTANCE}/frames/1", f"{INSTANCE}/htj2k/3", f"{STUDY}/bulkdata/ab/cd"):
        assert static_headers(path, _body("image/jpeg")) == {"Content-Type": expected}
    octets = static_headers(f"{STUDY}/bulkdata/ab/cd", _body("application/octet-stream"))
    assert 'type="application/octet-stream"' in octets["Content-Type"]


def test_other_files() -> None:
    assert static_headers(f"{INSTANCE}/info.json.gz", b"")["Content-Type"] == "application/json"
    assert static_headers(f"{INSTANCE}/info.json.gz", b"")["Content-Encoding"] == "gzip"
    assert static_headers("manifest.json", b"{")["Content-Type"] == "application/json"
    assert static_headers(f"{STUDY}.zip", b"PK")["Content-Type"] == "application/zip"
    # A bare frame (--frames raw) has no part header to name its type.
    assert static_headers(f"{INSTANCE}/frames/1", b"\xff\xd8") == {
        "Content-Type": "application/octet-stream"
    }


def test_files_are_published_before_the_documents_naming_them() -> None:
    names = [
        "studies/index.json.gz",
        "studies/pages/3.json.gz",
        f"{STUDY}/index.json.gz",
        f"{STUDY}/metadata.gz",
        f"{STUDY}/deduplicated.json.gz",
        f"{STUDY}/series/index.json.gz",
        f"{STUDY}/series/1.3/metadata.gz",
        f"{STUDY}/series/1.3/instances/index.json.gz",
        f"{INSTANCE}/metadata.gz",
        f"{INSTANCE}/info.json.gz",
        f"{INSTANCE}/frames/1",
        f"{INSTANCE}/htj2k/1",
        f"{STUDY}/bulkdata/ab/cd",
        "manifest.json",
    ]
    ordered = publication_order(names)
    assert ordered[0] == "manifest.json"
    assert ordered[-2:] == ["studies/index.json.gz", "studies/pages/3.json.gz"]
    position = ordered.index
    instance_files = ("info.json.gz", "frames/1", "htj2k/1")
    assert all(
        position(f"{INSTANCE}/{n}") < position(f"{INSTANCE}/metadata.gz") for n in instance_files
    )
    assert position(f"{STUDY}/bulkdata/ab/cd") < position(f"{INSTANCE}/metadata.gz")
    assert position(f"{INSTANCE}/metadata.gz") < position(f"{STUDY}/series/1.3/metadata.gz")
    assert position(f"{STUDY}/series/1.3/metadata.gz") < position(f"{STUDY}/metadata.gz")
    assert position(f"{STUDY}/series/1.3/instances/index.json.gz") < position(
        f"{STUDY}/index.json.gz"
    )


def test_extension_files_have_the_type_of_their_name() -> None:
    folder = "_aistartupco_covid19_detection"
    for level in (STUDY, f"{STUDY}/series/1.3", INSTANCE):
        for name, media_type in (
            ("result.json", "application/json"),
            ("heat.png", "image/png"),
            # Names a DICOMweb document has are still the vendor's files.
            ("metadata.gz", "application/gzip"),
            ("index.json.gz", "application/gzip"),
            ("page.html", "application/octet-stream"),
        ):
            assert static_headers(f"{level}/{folder}/{name}", b"\x1f\x8b") == {
                "Content-Type": media_type,
                "Cache-Control": "no-cache",
            }
    for document in ("extensions.json.gz", "bulkdata.json.gz"):
        assert static_headers(f"{STUDY}/{document}", b"\x1f\x8b") == {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Cache-Control": "no-cache",
        }
