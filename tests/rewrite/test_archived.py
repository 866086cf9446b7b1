"""The instances of another archive as inputs, and a copy through the transforms."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.deidentify.deidentifier import Deidentifier
from dicomweb_archive.deidentify.keys import PseudonymKey
from dicomweb_archive.deidentify.profile import Profile
from dicomweb_archive.errors import ResourceNotFoundError
from dicomweb_archive.rewrite.archived import archived_instances, copy_archive

SOURCES = [get_testdata_file(n) for n in ("CT_small.dcm", "MR_small.dcm")]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    archive = tmp_path / "source"
    assert Converter(archive, ConvertOptions(workers=1)).convert(SOURCES).ok
    return archive


def test_archived_instances_open_as_p10(source: Path) -> None:
    found = archived_instances(str(source))
    assert len(found) == 2
    ct = pydicom.dcmread(SOURCES[0])
    [chosen] = archived_instances(str(source), [ct.StudyInstanceUID])
    assert chosen.name == f"{source}: instance {ct.SOPInstanceUID}"
    with chosen.open() as fp:
        regenerated = pydicom.dcmread(fp)
    assert regenerated.PatientName == ct.PatientName
    with pytest.raises(ResourceNotFoundError, match="study 1.2.3 is not in"):
        archived_instances(str(source), ["1.2.3"])


def test_copy_deidentifies_like_a_conversion(source: Path, tmp_path: Path) -> None:
    key = PseudonymKey(b"k" * 32)
    options = ConvertOptions(workers=1, deidentify=Deidentifier(Profile.parse("basic"), key))
    copied = copy_archive(source, Converter(tmp_path / "copy", options))
    direct = Converter(tmp_path / "direct", options).convert(SOURCES)
    assert copied.ok and copied.counts["converted"] == 2
    assert sorted(copied.studies) == sorted(direct.studies)
    assert all(s.startswith("2.25.") for s in copied.studies)
    again = copy_archive(source, Converter(tmp_path / "copy", options))
    assert again.counts["unchanged"] == 2
