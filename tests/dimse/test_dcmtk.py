"""DCMTK's DIMSE clients against a real ``dwa listen``, beside a real ``dwa serve``.

One new folder is served by both processes for the whole module: ``storescu``
stores the reference files and a generated CT into ``dwa listen``, and what it
stored is checked through ``dwa serve``'s QIDO-RS and WADO-RS and against the
source files; ``findscu``, ``getscu`` and ``movescu`` query and retrieve it.
"""

from __future__ import annotations

import gzip
import io
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset

from dicomweb_archive import uids
from dicomweb_archive.demo.samples import write_ct_series
from tests import ports
from tests.dimse.live import AE_TITLE, Listening, dwa_listen, run
from tests.export.test_p10 import _dataset, _source_syntax
from tests.reference import EXPECTED_FAILURES, EXPECTED_SKIPS, reference_files
from tests.server.live import dwa_serve

pytestmark = pytest.mark.integration

#: storescu's option proposing each transfer syntax (and the uncompressed ones);
#: the native syntaxes need none.
STORESCU_PROPOSES = {
    uids.DeflatedExplicitVRLittleEndian: "-xd",
    "1.2.840.10008.1.2.4.50": "-xy",
    "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.4.81": "-xu",
    "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw",
    uids.RLELossless: "-xr",
    "1.2.840.10008.1.2.4.100": "-xm",
    "1.2.840.10008.1.2.4.101": "-xh",
    "1.2.840.10008.1.2.4.102": "-xn",
    "1.2.840.10008.1.2.4.103": "-xl",
}
MOVE_DESTINATION = "MOVESCU"


@dataclass
class Sent:
    """A reference file storescu was given, and what it holds."""

    path: Path
    sop: str
    study: str | None
    syntax: str


@dataclass
class Servers:
    listening: Listening
    root: str
    move_port: int
    work: Path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    work = tmp_path_factory.mktemp("dimse")
    archive = work / "new-archive"  # not there yet: dwa listen makes it
    peers = work / "peers.toml"
    # movescu listens on the Move Destination's port, told by the test, long after
    # dwa listen read it from the peers file: held until then.
    with ports.reserved_port() as move_port:
        peers.write_text(f'[peers.{MOVE_DESTINATION}]\nhost = "127.0.0.1"\nport = {move_port}\n')
        with (
            dwa_listen(archive, "--ae-title", AE_TITLE, "--peers", str(peers)) as listening,
            dwa_serve(archive) as (root, _),
        ):
            yield Servers(listening, root, move_port, work)


def _readable(path: Path) -> Dataset | None:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    except Exception:
        return None


def _folders(work: Path) -> dict[str, list[Sent]]:
    """The reference files storescu can propose, by its option, in folders of their own."""
    by_option: dict[str, list[Sent]] = {}
    for path in reference_files():
        ds = _readable(path)
        if ds is None or path.name in EXPECTED_SKIPS or "SOPInstanceUID" not in ds:
            continue
        syntax = _source_syntax(ds)
        option = "" if syntax in uids.NATIVE_TRANSFER_SYNTAXES else STORESCU_PROPOSES.get(syntax)
        if option is None or "SOPClassUID" not in ds:
            continue
        folder = work / "reference" / (option or "native")
        folder.mkdir(parents=True, exist_ok=True)
        copy = folder / f"{len(list(folder.iterdir())):03d}-{path.name.removesuffix('.gz')}"
        data = path.read_bytes()
        copy.write_bytes(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
        study = str(ds.get("StudyInstanceUID", "")) or None
        by_option.setdefault(option, []).append(Sent(copy, str(ds.SOPInstanceUID), study, syntax))
    return by_option


def storescu(servers: Servers, *arguments: str) -> str:
    done = run(
        "storescu", "-aec", AE_TITLE, "-nh", "127.0.0.1", str(servers.listening.port), *arguments
    )
    return done.stdout + done.stderr


def _instances(root: str, study: str) -> dict[str, Dataset]:
    answer = httpx.get(f"{root}/studies/{study}/instances", timeout=30)
    assert answer.status_code == 200, answer.text
    rows = answer.json()
    return {row["00080018"]["Value"][0]: row for row in rows}


def _retrieved(root: str, sent: Sent, series: str) -> Dataset:
    """The instance as WADO-RS answers it, in its own transfer syntax."""
    url = f"{root}/studies/{sent.study}/series/{series}/instances/{sent.sop}"
    answer = httpx.get(
        url, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
    )
    assert answer.status_code == 200, answer.text
    body = answer.content
    start = body.index(b"\r\n\r\n") + 4
    end = body.rindex(b"\r\n--")
    return pydicom.dcmread(io.BytesIO(body[start:end]))


def test_echoscu(servers: Servers) -> None:
    done = run(
        "echoscu", "-aet", "PINGER", "-aec", AE_TITLE, "127.0.0.1", str(servers.listening.port)
    )
    assert done.returncode == 0, done.stderr
    servers.listening.wait_for_log("from PINGER@127.0.0.1")


def _name(sent: Sent) -> str:
    """The reference file's own name (its copy is numbered)."""
    return sent.path.name.split("-", 1)[1]


def test_storescu_stores_the_reference_files(servers: Servers) -> None:
    folders = _folders(servers.work)
    assert len(folders[""]) > 150 and len(folders) > 8
    given = [sent for files in folders.values() for sent in files]
    sending: set[str] = set()
    for option, files in folders.items():
        arguments = ["-v", "+sd", "-R", *([option] if option else []), str(files[0].path.parent)]
        output = storescu(servers, *arguments)
        # storescu itself refuses a few damaged files (truncated, no SOP Class).
        sending |= set(re.findall(r"Sending file: (.*)", output))
    sent = [s for s in given if str(s.path) in sending]
    assert len(sent) > len(given) - 10
    log = servers.listening.wait_for_log("STORESCU")
    answer = httpx.get(f"{servers.root}/instances", params={"limit": 10_000}, timeout=60)
    found = {row["00080018"]["Value"][0] for row in answer.json()}
    for instance in sent:
        if _name(instance) not in EXPECTED_FAILURES:
            assert instance.sop in found, f"{_name(instance)} ({instance.syntax}) not in QIDO-RS"
    refused = [s for s in sent if EXPECTED_FAILURES.get(_name(s)) == "StudyInstanceUID is missing"]
    assert len(refused) > 5
    for instance in refused:
        assert f"SOP Instance {instance.sop} failed (0xC000): StudyInstanceUID is missing" in log


def test_storescu_of_a_generated_ct_then_wado_returns_the_same_instances(servers: Servers) -> None:
    files = write_ct_series(servers.work / "ct", slices=12, rows=64, columns=64)
    output = storescu(servers, "+sd", str(servers.work / "ct"))
    assert "Store SCP status: 0x" not in output or "0x0000" in output
    for path in files:
        source = pydicom.dcmread(path)
        sent = Sent(path, str(source.SOPInstanceUID), str(source.StudyInstanceUID), "")
        assert sent.sop in _instances(servers.root, str(sent.study))
        got = _retrieved(servers.root, sent, str(source.SeriesInstanceUID))
        assert _dataset(got) == _dataset(source)
        assert got.PixelData == source.PixelData


@pytest.fixture(scope="module")
def ct(servers: Servers) -> list[Path]:
    """A CT stored by storescu, for the queries and retrievals."""
    files = write_ct_series(
        servers.work / "ct-q", slices=6, rows=32, columns=32, patient_id="DIMSE-Q", seed=7
    )
    storescu(servers, "+sd", str(servers.work / "ct-q"))
    return files


def findscu(servers: Servers, model: str, *keys: str) -> list[Dataset]:
    """The identifiers findscu received (``-X`` writes each to a file)."""
    out = Path(tempfile.mkdtemp(prefix="find-", dir=servers.work))
    arguments = [a for key in keys for a in ("-k", key)]
    done = run(
        "findscu", model, "-aec", AE_TITLE, "-X", "-od", str(out),
        "127.0.0.1", str(servers.listening.port), *arguments,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [pydicom.dcmread(p) for p in sorted(out.iterdir())]


def test_findscu_study_root_at_every_level(servers: Servers, ct: list[Path]) -> None:
    first = pydicom.dcmread(ct[0])
    study, series = str(first.StudyInstanceUID), str(first.SeriesInstanceUID)
    [found] = findscu(
        servers, "-S", "QueryRetrieveLevel=STUDY", "PatientID=DIMSE-Q", "StudyInstanceUID",
        "PatientName", "NumberOfStudyRelatedInstances", "ModalitiesInStudy", "StudyDate",
    )  # fmt: skip
    assert found.StudyInstanceUID == study
    assert found.NumberOfStudyRelatedInstances == 6
    assert found.PatientName == first.PatientName and found.StudyDate == first.StudyDate
    [found] = findscu(
        servers, "-S", "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={study}",
        "SeriesInstanceUID", "Modality", "NumberOfSeriesRelatedInstances",
    )  # fmt: skip
    assert found.SeriesInstanceUID == series and found.Modality == "CT"
    images = findscu(
        servers, "-S", "QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={study}",
        f"SeriesInstanceUID={series}", "SOPInstanceUID", "InstanceNumber",
    )  # fmt: skip
    wanted = {str(pydicom.dcmread(p).SOPInstanceUID) for p in ct}
    assert {str(i.SOPInstanceUID) for i in images} == wanted


def test_findscu_patient_root(servers: Servers, ct: list[Path]) -> None:
    [patient] = findscu(
        servers, "-P", "QueryRetrieveLevel=PATIENT", "PatientID=DIMSE-Q", "PatientName",
        "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedInstances",
    )  # fmt: skip
    assert patient.PatientID == "DIMSE-Q"
    assert patient.NumberOfPatientRelatedStudies == 1
    assert patient.NumberOfPatientRelatedInstances == 6


def test_findscu_with_a_wildcard_and_a_date_range(servers: Servers, ct: list[Path]) -> None:
    first = pydicom.dcmread(ct[0])
    found = findscu(
        servers, "-S", "QueryRetrieveLevel=STUDY", "PatientID=DIMSE-*",
        f"StudyDate={first.StudyDate}-", "StudyInstanceUID",
    )  # fmt: skip
    assert [str(f.StudyInstanceUID) for f in found] == [str(first.StudyInstanceUID)]
    assert findscu(servers, "-S", "QueryRetrieveLevel=STUDY", "PatientID=NOBODY") == []


def test_findscu_with_a_key_that_cannot_match_is_refused_with_the_reason(
    servers: Servers,
) -> None:
    done = run(
        "findscu", "-v", "-S", "-aec", AE_TITLE, "127.0.0.1", str(servers.listening.port),
        "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyDate=20241301",
    )  # fmt: skip
    assert "Error: DataSetDoesNotMatchSOPClass" in done.stdout + done.stderr
    servers.listening.wait_for_log("failed (0xA900): '20241301' is not a valid DA value")


def _same_instances(received: list[Path], sources: list[Path]) -> None:
    by_sop = {str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p) for p in sources}
    assert len(received) == len(sources)
    for path in received:
        got = pydicom.dcmread(path)
        source = by_sop[str(got.SOPInstanceUID)]
        assert _dataset(got) == _dataset(source)
        assert got.PixelData == source.PixelData


def test_getscu_retrieves_the_series_as_regenerated_p10(servers: Servers, ct: list[Path]) -> None:
    first = pydicom.dcmread(ct[0])
    out = servers.work / "got"
    out.mkdir()
    done = run(
        "getscu", "-S", "-aec", AE_TITLE, "-od", str(out), "127.0.0.1",
        str(servers.listening.port), "-k", "QueryRetrieveLevel=SERIES",
        "-k", f"StudyInstanceUID={first.StudyInstanceUID}",
        "-k", f"SeriesInstanceUID={first.SeriesInstanceUID}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    _same_instances(sorted(out.iterdir()), ct)


def test_movescu_sends_to_the_configured_destination(servers: Servers, ct: list[Path]) -> None:
    first = pydicom.dcmread(ct[0])
    out = servers.work / "moved"
    out.mkdir()
    done = run(
        "movescu", "-S", "-aet", MOVE_DESTINATION, "-aem", MOVE_DESTINATION, "-aec", AE_TITLE,
        "--port", str(servers.move_port), "-od", str(out), "127.0.0.1",
        str(servers.listening.port), "-k", "QueryRetrieveLevel=STUDY",
        "-k", f"StudyInstanceUID={first.StudyInstanceUID}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    _same_instances(sorted(out.iterdir()), ct)


def test_movescu_to_an_unknown_destination_is_refused(servers: Servers, ct: list[Path]) -> None:
    first = pydicom.dcmread(ct[0])
    done = run(
        "movescu", "-v", "-S", "-aem", "NOBODY", "-aec", AE_TITLE, "127.0.0.1",
        str(servers.listening.port), "-k", "QueryRetrieveLevel=STUDY",
        "-k", f"StudyInstanceUID={first.StudyInstanceUID}",
    )  # fmt: skip
    assert "Refused: MoveDestinationUnknown" in done.stdout + done.stderr
    servers.listening.wait_for_log("Move Destination 'NOBODY' is not a known peer")


def test_getscu_of_a_compressed_instance_for_a_receiver_of_uncompressed_only(
    servers: Servers,
) -> None:
    source = pydicom.dcmread(pydicom.data.get_testdata_file("JPEG2000.dcm"))
    copy = servers.work / "j2k"
    copy.mkdir()
    shutil.copy(pydicom.data.get_testdata_file("JPEG2000.dcm"), copy / "j2k.dcm")
    storescu(servers, "-xw", "+sd", str(copy))
    out = servers.work / "got-j2k"
    out.mkdir()
    done = run(
        "getscu", "-S", "-aec", AE_TITLE, "-od", str(out), "127.0.0.1",
        str(servers.listening.port), "-k", "QueryRetrieveLevel=IMAGE",
        "-k", f"StudyInstanceUID={source.StudyInstanceUID}",
        "-k", f"SeriesInstanceUID={source.SeriesInstanceUID}",
        "-k", f"SOPInstanceUID={source.SOPInstanceUID}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [path] = out.iterdir()
    got = pydicom.dcmread(path)
    assert got.file_meta.TransferSyntaxUID == uids.ExplicitVRLittleEndian
    frame = source.Rows * source.Columns * source.SamplesPerPixel * source.BitsAllocated // 8
    assert len(got.PixelData) == frame * int(source.get("NumberOfFrames", 1))


def test_a_calling_ae_off_the_allow_list_is_rejected_and_named(tmp_path: Path) -> None:
    with dwa_listen(tmp_path / "archive", "--allow-ae", "FRIEND") as listening:
        port = str(listening.port)
        refused = run("echoscu", "-aet", "STRANGER", "-aec", AE_TITLE, "127.0.0.1", port)
        assert refused.returncode != 0
        assert "Association Rejected" in refused.stdout + refused.stderr
        listening.wait_for_log("calling AE title 'STRANGER' is not on the allow-list")
        allowed = run("echoscu", "-aet", "FRIEND", "-aec", AE_TITLE, "127.0.0.1", port)
        assert allowed.returncode == 0, allowed.stderr


def test_an_instance_stored_by_stow_rs_is_found_by_findscu(servers: Servers) -> None:
    source = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    source.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    source.SOPInstanceUID = source.file_meta.MediaStorageSOPInstanceUID = (
        "1.2.826.0.1.3680043.8.498.2"
    )
    source.PatientID = "STOWED"
    body = io.BytesIO()
    source.save_as(body, enforce_file_format=True)
    answer = httpx.post(
        f"{servers.root}/studies",
        content=b"--b\r\nContent-Type: application/dicom\r\n\r\n" + body.getvalue() + b"\r\n--b--",
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    [found] = findscu(
        servers, "-S", "QueryRetrieveLevel=STUDY", "PatientID=STOWED", "StudyInstanceUID"
    )
    assert found.StudyInstanceUID == source.StudyInstanceUID
