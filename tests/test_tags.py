"""Every named tag is the tag pydicom's data dictionary gives its keyword."""

from __future__ import annotations

import pytest
from pydicom.datadict import tag_for_keyword

from dicomweb_archive import tags

NAMES = [name for name, value in vars(tags).items() if name[0].isupper() and isinstance(value, str)]


def test_there_are_names() -> None:
    assert len(NAMES) > 50
    assert tags.StudyInstanceUID == "0020000D"


@pytest.mark.parametrize("keyword", NAMES)
def test_constant_is_the_tag_of_its_keyword(keyword: str) -> None:
    value = getattr(tags, keyword)
    tag = tag_for_keyword(keyword)
    assert tag is not None, f"{keyword} is not a DICOM keyword"
    # The DICOM JSON Model's key: eight upper-case hexadecimal digits.
    assert value == f"{tag:08X}"
