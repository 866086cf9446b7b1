"""The study's ``bulkdata`` document: every bulk data value's instances and tag
paths, refreshed with the study, kept by packing, served by ``dwa serve``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.packing import pack_study
from tests.conftest import read_json_gz, write_instance
from tests.server.live import live_server

DOCUMENT = b"%PDF-" + bytes(range(256)) * 4


def _with_nested_bulk_data(path: Path) -> Path:
    """The instance with an Encapsulated Document in the second item of a sequence."""
    ds = pydicom.dcmread(path)
    second = Dataset()
    second.EncapsulatedDocument = DOCUMENT
    ds.AcquisitionContextSequence = [Dataset(), second]
    ds.save_as(path, enforce_file_format=True)
    return path


def test_each_value_names_its_instances_and_tag_paths(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    sops = [generate_uid(), generate_uid()]
    sources = [
        _with_nested_bulk_data(
            write_instance(
                tmp_path / "in", study=study, series=series, sop=sop, instance_number=n,
                private_bytes=300,
            )
        )
        for n, sop in enumerate(sops, 1)
    ]  # fmt: skip
    root = tmp_path / "archive"
    assert (
        Converter(root, ConvertOptions(workers=1, public_bulk_size=512))
        .convert([str(s) for s in sources])
        .ok
    )
    document = read_json_gz(root / paths.bulkdata_context(study))
    assert document["format"] == "dicomweb-archive/bulkdata"
    uses = {
        (use["sopInstanceUID"], use["tagPath"], use["vr"]): uri
        for uri, found in document["bulkdata"].items()
        for use in found
    }
    assert set(uses) == {
        (sop, path, "OB") for sop in sops for path in ("00400555/1/00420011", "00111001")
    }
    # Equal values are stored once: one URI, used by both instances.
    assert (
        uses[(sops[0], "00400555/1/00420011", "OB")] == uses[(sops[1], "00400555/1/00420011", "OB")]
    )
    # Each URI, against the study, is the stored value.
    archive = open_archive(root)
    for uri in document["bulkdata"]:
        assert archive.exists(f"{paths.study_dir(study)}/{uri}")
    metadata = read_json_gz(root / paths.instance_metadata(study, series, sops[0]))[0]
    item = metadata["00400555"]["Value"][1]["00420011"]
    assert item["BulkDataURI"] in document["bulkdata"]

    # Served, and kept in the study's ZIP.
    pack_study(archive, study, remove=True)
    assert archive.read_json_gz(paths.bulkdata_context(study)) == document
    with live_server(create_app(root)) as url:
        served = httpx.get(f"{url}/studies/{study}/bulkdata")
        assert served.status_code == 200
        assert served.headers["content-type"] == "application/json"
        assert served.json() == document
        # From an item's URL: drop its last two segments.
        item_url = f"{url}/studies/{study}/{item['BulkDataURI']}"
        assert httpx.get(item_url.rsplit("/", 2)[0]).json() == document


def test_no_bulk_data_no_document(tmp_path: Path) -> None:
    study = generate_uid()
    source = write_instance(tmp_path / "in", study=study, series=generate_uid())
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([str(source)]).ok
    assert not (root / paths.bulkdata_context(study)).exists()
    with live_server(create_app(root)) as url:
        assert httpx.get(f"{url}/studies/{study}/bulkdata").status_code == 404
