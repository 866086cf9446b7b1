"""The PHI checker: after de-identification nothing identifying of the originals is left.

Every reference file (pydicom's and pydicom-data's) and a generated CT study
with an SR, a SEG-like and an RTSTRUCT-like instance referring to its images
are de-identified four ways: ``dwa convert --deidentify``, ``dwa deidentify``
of a plain archive, ``dwa export --deidentify`` and the ZIP retrieve with
``?deidentify=basic``.  No value of an element the Basic Profile removes,
empties, dummies or replaces (names, IDs, dates, UIDs, descriptions, private
values: PS3.15 Table E.1-1) may appear in any of them: metadata, bulk data,
``info``, file and folder names, QIDO documents, the SQLite index, ZIP entry
names, exported files.  A value the originals also hold in an element the
profile keeps (a Manufacturer equal to a private value, say) is not identifying
and is not looked for.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pydicom
import pytest
from click.testing import CliRunner
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from starlette.testclient import TestClient

from dicomweb_archive.cli.main import cli
from dicomweb_archive.deidentify import table
from dicomweb_archive.deidentify.keys import PseudonymKey
from dicomweb_archive.model import multipart
from dicomweb_archive.server.app import create_app
from dicomweb_archive.store.index import INDEX_PATH
from tests.conftest import write_instance
from tests.reference import reference_files

KEY = b"a de-identification key for the PHI checker"
OTHER_KEY = b"another key, which must give other pseudonyms"
#: Shorter values (M, 1, CT) say nothing and are everywhere.
MIN_LENGTH = 4
#: Shorter numbers (a study ID 0010) are everywhere too: instance numbers, values.
MIN_DIGITS = 6
#: Element VRs whose values can name someone (numbers, times and binary cannot).
TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "UC", "UI", "UR", "UT"}
#: What de-identification writes itself.
WRITTEN = {"ANONYMIZED", "19000101", "000000", "dicomweb-archive"}
CT = "1.2.840.10008.5.1.4.1.1.2"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"
RT_STRUCTURE_SET = "1.2.840.10008.5.1.4.1.1.481.3"


# -- the inputs ---------------------------------------------------------------------


def _derived(
    sop_class: str, modality: str, study: str, frame_of_reference: str, images: list[Dataset]
) -> Dataset:
    """An instance referring to ``images`` the ways SR, SEG and RTSTRUCT do."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
    ds.FrameOfReferenceUID = frame_of_reference
    ds.Modality, ds.PatientName, ds.PatientID = modality, "Sensitive^Patient", "SECRET-ID-77"
    ds.StudyDate, ds.ContentDate = "20240102", "20240103"
    ds.OperatorsName = "Technologist^Tina"
    refs = []
    for image in images:
        ref = Dataset()
        ref.ReferencedSOPClassUID = image.SOPClassUID
        ref.ReferencedSOPInstanceUID = image.SOPInstanceUID
        refs.append(ref)
    series = Dataset()
    series.SeriesInstanceUID = images[0].SeriesInstanceUID
    series.ReferencedInstanceSequence = Sequence(refs)
    ds.ReferencedSeriesSequence = Sequence([series])  # SEG
    evidence = Dataset()
    evidence.StudyInstanceUID = study
    evidence.ReferencedSeriesSequence = Sequence([series])
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([evidence])  # SR
    contour = Dataset()
    contour.ContourImageSequence = Sequence(refs)
    frame = Dataset()
    frame.FrameOfReferenceUID = frame_of_reference
    frame.RTReferencedStudySequence = Sequence([Dataset()])
    frame.RTReferencedStudySequence[0].ReferencedSOPInstanceUID = study
    frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence = Sequence([contour])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])  # RTSTRUCT
    item = Dataset()
    item.ValueType, item.RelationshipType = "IMAGE", "CONTAINS"
    item.ReferencedSOPSequence = Sequence(refs[:1])
    text = Dataset()
    text.ValueType, text.RelationshipType = "TEXT", "CONTAINS"
    text.TextValue = "Findings discussed with Sensitive Patient and Dr Watson-Holmes"
    ds.ContentSequence = Sequence([item, text])
    return ds


def _generated(folder: Path) -> list[Path]:
    """A CT series (with private data) and three instances referring to it."""
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    paths = [
        write_instance(
            folder,
            study=study,
            series=series,
            instance_number=n,
            patient_name="Sensitive^Patient",
            patient_id="SECRET-ID-77",
            private_bytes=300,
        )
        for n in (1, 2, 3)
    ]
    images = []
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.FrameOfReferenceUID = frame
        ds.InstitutionName = "Hospital of Saint Secrecy"
        ds.save_as(path)
        images.append(ds)
    for sop_class, modality in (
        (COMPREHENSIVE_SR, "SR"),
        (SEGMENTATION, "SEG"),
        (RT_STRUCTURE_SET, "RTSTRUCT"),
    ):
        ds = _derived(sop_class, modality, study, frame, images)
        path = folder / f"{modality}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


# -- what the originals hold ------------------------------------------------------------


def _texts(element: pydicom.DataElement) -> list[str]:
    value = element.value
    values = list(value) if isinstance(value, pydicom.multival.MultiValue | list) else [value]
    found = []
    for v in values:
        if isinstance(v, bytes) or v is None or isinstance(v, Dataset):
            continue
        text = str(v).strip(" \x00")
        found.append(text)
        if element.VR == "PN":
            found += [p for p in re.split(r"[\^=]+", text) if p]
    return [t for t in found if len(t) >= (MIN_DIGITS if t.isdigit() else MIN_LENGTH)]


def _walk(ds: Dataset, rules: table.Rules, identifying: set[str], kept: set[str]) -> None:
    for tag in list(ds.keys()):
        try:
            element = ds[tag]
        except Exception:  # an unreadable value the converter fails on too
            continue
        if element.VR == "SQ":
            for item in element.value or []:
                _walk(item, rules, identifying, kept)
            continue
        if element.VR not in TEXT_VRS:
            continue
        action = "X" if tag.group % 2 else rules.action(int(tag))
        if action is None or action == "K":
            kept.update(_texts(element))
        elif element.VR != "UI" or not str(element.value).startswith("1.2.840.10008."):
            identifying.update(_texts(element))


def identifying_values(files: list[Path]) -> set[str]:
    """Values the Basic Profile must not let through, found in ``files``."""
    rules = table.rules(frozenset())
    identifying: set[str] = set()
    kept: set[str] = set()
    for path in files:
        try:
            ds = pydicom.dcmread(path, force=True)
        except Exception:  # not DICOM: not converted either
            continue
        _walk(ds, rules, identifying, kept)
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            _walk(meta, rules, identifying, kept)
            for keyword in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle"):
                if keyword in meta:
                    identifying.update(_texts(meta[keyword]))
    # A value inside a kept one ("TOSHIBA" in "TOSHIBA_MEC") is no secret either.
    blob = Haystack()
    for value in kept | WRITTEN:
        blob.add_text(value)
    return identifying - blob.found(identifying)


# -- where to look ------------------------------------------------------------------------


class Haystack:
    """Bytes to search, many needles at once: 4-byte prefixes found by numpy, then checked."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def add(self, data: bytes) -> None:
        self.chunks.append(data)

    def add_text(self, text: str) -> None:
        self.chunks.append(text.encode("utf-8", "surrogateescape"))

    def found(self, needles: set[str]) -> set[str]:
        encoded = {n.encode("utf-8"): n for n in needles}
        by_prefix: dict[int, list[bytes]] = {}
        for needle in encoded:
            by_prefix.setdefault(int.from_bytes(needle[:4], "big"), []).append(needle)
        prefixes = np.array(sorted(by_prefix), dtype=np.uint32)
        hits: set[str] = set()
        data = b"\x00".join(self.chunks)
        b = np.frombuffer(data, dtype=np.uint8).astype(np.uint32)
        if len(b) < 4:
            return hits
        windows = b[:-3] << 24 | b[1:-2] << 16 | b[2:-1] << 8 | b[3:]
        for position in np.flatnonzero(np.isin(windows, prefixes)):
            start = int(position)
            for needle in by_prefix[int(windows[position])]:
                if data.startswith(needle, start) and not _inside_a_number(data, needle, start):
                    hits.add(encoded[needle])
        return hits


def _inside_a_number(data: bytes, needle: bytes, start: int) -> bool:
    """A number (an ID, a date) found inside a longer token: a part of a UID, a tag, a value."""
    if not needle.isdigit():
        return False
    end = start + len(needle)
    return data[start - 1 : start].isalnum() or data[end : end + 1].isalnum()


def archive_haystack(root: Path) -> Haystack:
    """Every file of an archive, its name and (gunzipped) content; frames are pixel data."""
    haystack = Haystack()
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            relative = str(path.relative_to(root))
            haystack.add_text(relative)
            if "/frames/" in relative:
                continue  # the pixel data, compared with the originals' below
            data = path.read_bytes()
            haystack.add(gzip.decompress(data) if name.endswith(".gz") else data)
    return haystack


def p10_haystack(files: Iterator[tuple[str, bytes]]) -> Haystack:
    """Names and the decoded elements of P10 files (whatever their character set).

    Not their raw bytes: the pixel data is the source's, unchanged on purpose.
    """
    haystack = Haystack()
    for name, data in files:
        haystack.add_text(name)
        ds = pydicom.dcmread(io.BytesIO(data))
        haystack.add_text(ds.file_meta.to_json())
        # Binary values left out: base64 holds any word by chance (pixel data, an ICC profile).
        text = ds.to_json(0, lambda _: "", suppress_invalid_tags=True)
        haystack.add_text(text)
    return haystack


# -- the archives ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return [*reference_files(), *_generated(tmp_path_factory.mktemp("generated"))]


@pytest.fixture(scope="module")
def needles(inputs: list[Path]) -> set[str]:
    found = identifying_values(inputs)
    assert {"Sensitive^Patient", "SECRET-ID-77", "Hospital of Saint Secrecy"} <= found
    assert len(found) > 500
    return found


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "key"
    path.write_bytes(KEY)
    return path


def _convert(inputs: list[Path], archive: Path, *extra: str) -> dict[str, object]:
    args = ["convert", *map(str, inputs), "-o", str(archive), "-w", "2", "-q", "--json"]
    # The reference files hold copies of one SOP Instance UID with other content:
    # with two workers, the overwrite policy's replay keeps the last, as one core does.
    args += ["--on-duplicate", "overwrite"]
    result = CliRunner().invoke(cli, [*args, *extra])
    assert result.exit_code == 1, result.output  # the reference files that must fail
    summary: dict[str, object] = orjson.loads(result.stdout)
    return summary


@pytest.fixture(scope="module")
def plain(inputs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = tmp_path_factory.mktemp("plain") / "archive"
    _convert(inputs, archive)
    return archive


@pytest.fixture(scope="module")
def deidentified(
    inputs: list[Path], key_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    archive = tmp_path_factory.mktemp("deidentified") / "archive"
    summary = _convert(
        inputs, archive, "--deidentify", "basic", "--key", str(key_file), "--allow-burned-in"
    )
    assert summary["converted"] > 150
    index = CliRunner().invoke(cli, ["index", str(archive)])
    assert index.exit_code == 0, index.output
    return archive


def _instances(archive: Path) -> dict[str, Dataset]:
    found = {}
    for path in (archive / "studies").glob("*/series/*/instances/*/metadata.gz"):
        [meta] = orjson.loads(gzip.decompress(path.read_bytes()))
        found[path.parent.name] = Dataset.from_json(meta, bulk_data_uri_handler=lambda *_: b"")
    return found


def _values_only(archive: Path, needles: set[str]) -> set[str]:
    """``needles`` less the words of the QIDO index's own schema (a column patient_id)."""
    index = archive / INDEX_PATH
    if not index.is_file():
        return needles
    with contextlib.closing(sqlite3.connect(index)) as db:
        [(schema,)] = db.execute("SELECT group_concat(sql, ' ') FROM sqlite_master")
    words = Haystack()
    words.add_text(schema or "")
    return needles - words.found(needles)


# -- the checks ---------------------------------------------------------------------------


def test_converted_archive_holds_no_identifying_value(
    deidentified: Path, needles: set[str]
) -> None:
    assert (deidentified / INDEX_PATH).is_file()
    assert archive_haystack(deidentified).found(_values_only(deidentified, needles)) == set()


def test_the_checker_finds_what_a_plain_archive_holds(plain: Path, needles: set[str]) -> None:
    leaked = archive_haystack(plain).found(needles)
    assert {"Sensitive^Patient", "SECRET-ID-77", "Hospital of Saint Secrecy"} <= leaked
    assert len(leaked) > len(needles) // 2


def test_deidentified_copy_of_an_archive(
    plain: Path, deidentified: Path, key_file: Path, needles: set[str], tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    args = ["deidentify", str(plain), "-o", str(copy), "--key", str(key_file)]
    result = CliRunner().invoke(cli, [*args, "--allow-burned-in", "-w", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert archive_haystack(copy).found(_values_only(copy, needles)) == set()
    # The same key, another run and another path: the same UIDs.
    assert _instances(copy).keys() == _instances(deidentified).keys()


def test_export_and_zip_retrieve(
    inputs: list[Path], plain: Path, key_file: Path, needles: set[str], tmp_path: Path
) -> None:
    out = tmp_path / "export"
    args = ["export", str(plain), "-o", str(out), "--deidentify", "basic", "--key", str(key_file)]
    result = CliRunner().invoke(cli, [*args, "--allow-burned-in"])
    assert result.exit_code == 0, result.output
    exported = [p for p in out.rglob("*") if p.is_file()]
    files = ((str(p.relative_to(out)), p.read_bytes()) for p in exported)
    assert p10_haystack(files).found(needles) == set(), "in exported files"

    members: list[tuple[str, bytes]] = []
    with TestClient(create_app(plain, deidentify_key=str(key_file))) as client:
        studies = sorted(p.name for p in (plain / "studies").iterdir() if p.is_dir())
        # Every third study (the export above went through every one), the generated one too.
        generated = str(pydicom.dcmread(inputs[-1]).StudyInstanceUID)
        requested = sorted({*studies[::3], generated})
        for study in requested:
            response = client.get(
                f"/dicomweb/studies/{study}",
                params={
                    "accept": "application/zip",
                    "deidentify": "basic",
                    "allowBurnedIn": "true",
                },
            )
            assert response.status_code == 200, response.text
            disposition = response.headers["content-disposition"]
            members.append((disposition, b""))
            with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
                members += [(n, bundle.read(n)) for n in bundle.namelist()]
    assert len([m for m in members if m[1]]) >= len(requested) > 15
    haystack = Haystack()
    for name, _ in members:
        haystack.add_text(name)
    assert haystack.found(needles) == set(), "in ZIP entry and file names"
    assert p10_haystack(m for m in members if m[1]).found(needles) == set(), "in ZIP entries"


def test_uids_are_consistent_and_references_resolve(
    inputs: list[Path], deidentified: Path, tmp_path: Path
) -> None:
    instances = _instances(deidentified)
    generated = [ds for ds in instances.values() if ds.get("PatientID") == _pseudonym()]
    assert sorted(ds.Modality for ds in generated) == ["CT", "CT", "CT", "RTSTRUCT", "SEG", "SR"]
    images = {ds.SOPInstanceUID: ds for ds in generated if ds.Modality == "CT"}
    [study] = {ds.StudyInstanceUID for ds in generated}
    [frame] = {ds.FrameOfReferenceUID for ds in generated}
    for ds in generated:
        if ds.Modality == "CT":
            continue
        refs = [
            r.ReferencedSOPInstanceUID
            for r in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence
        ]
        assert set(refs) == set(images)
        assert (
            ds.ReferencedSeriesSequence[0].SeriesInstanceUID
            == next(iter(images.values())).SeriesInstanceUID
        )
        assert ds.CurrentRequestedProcedureEvidenceSequence[0].StudyInstanceUID == study
        rt = ds.ReferencedFrameOfReferenceSequence[0]
        assert rt.FrameOfReferenceUID == frame
        assert rt.RTReferencedStudySequence[0].ReferencedSOPInstanceUID == study
        contours = (
            rt.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].ContourImageSequence
        )
        assert {c.ReferencedSOPInstanceUID for c in contours} == set(images)
        assert ds.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID in images
        assert ds.ContentSequence[1].TextValue == "ANONYMIZED"
    # Another key: other UIDs and pseudonyms for the same sources.
    generated_inputs = inputs[-6:]
    other_key = tmp_path / "other"
    other_key.write_bytes(OTHER_KEY)
    other = tmp_path / "other-archive"
    args = ["convert", *map(str, generated_inputs), "-o", str(other), "-w", "1", "-q"]
    result = CliRunner().invoke(cli, [*args, "--deidentify", "basic", "--key", str(other_key)])
    assert result.exit_code == 0, result.output
    assert not set(_instances(other)) & set(instances)


def test_pixel_data_is_untouched(inputs: list[Path], plain: Path, deidentified: Path) -> None:
    key = PseudonymKey(KEY)
    # Some reference files share their UIDs: which one an archive holds is the last written.
    counts: dict[str, int] = {}
    for path in inputs:
        try:
            sop = str(pydicom.dcmread(path, stop_before_pixels=True, force=True).SOPInstanceUID)
        except Exception:  # not DICOM, or no SOP Instance UID: not converted
            continue
        counts[sop] = counts.get(sop, 0) + 1
    compared = 0
    for frame in (plain / "studies").glob("*/series/*/instances/*/frames/*"):
        study, series, sop = frame.parts[-7], frame.parts[-5], frame.parts[-3]
        if counts.get(sop) != 1:
            continue
        twin = deidentified / "studies" / key.uid(study) / "series" / key.uid(series)
        twin = twin / "instances" / key.uid(sop) / "frames" / frame.name
        assert multipart.unwrap(twin.read_bytes())[1] == multipart.unwrap(frame.read_bytes())[1]
        compared += 1
    assert compared > 60


def _pseudonym() -> str:
    return PseudonymKey(KEY).identifier("patient", "SECRET-ID-77")
