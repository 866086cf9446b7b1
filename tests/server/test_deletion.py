"""DELETE of studies, series and instances over real HTTP (dicomweb-client), behind
the write token, over study folders and packed studies."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.server.app import create_app
from tests.conftest import write_instance
from tests.server.conftest import arrange
from tests.server.live import live_server


@pytest.mark.parametrize("layout", ["folders", "zips"])
def test_delete_instance_series_study(tmp_path: Path, layout: str) -> None:
    study, series = generate_uid(), [generate_uid(), generate_uid()]
    sources = [
        write_instance(tmp_path / "in", study=study, series=uid, instance_number=n)
        for uid in series
        for n in (1, 2)
    ]
    other = write_instance(tmp_path / "in", study=generate_uid(), series=generate_uid())
    root = tmp_path / "archive"
    inputs = [str(p) for p in [*sources, other]]
    assert Converter(root, ConvertOptions(workers=1)).convert(inputs).ok
    arrange(root, layout)
    first = pydicom.dcmread(sources[0])
    with live_server(create_app(root, write_token="t0ken")) as url:
        web = DICOMwebClient(url, headers={"Authorization": "Bearer t0ken"})
        instance = f"{url}/studies/{study}/series/{series[0]}/instances/{first.SOPInstanceUID}"
        refused = requests.delete(instance, timeout=10)
        assert refused.status_code == 401
        assert len(web.search_for_instances(study)) == 4

        web.delete_instance(study, series[0], first.SOPInstanceUID)
        found = web.search_for_instances(study)
        assert first.SOPInstanceUID not in {r["00080018"]["Value"][0] for r in found}
        assert len(found) == 3
        gone = requests.get(f"{instance}/metadata", timeout=10)
        assert gone.status_code == 404
        answer = requests.delete(instance, headers={"Authorization": "Bearer t0ken"}, timeout=10)
        assert (answer.status_code, answer.json()["error"]) == (404, "ResourceNotFoundError")

        web.delete_series(study, series[1])
        assert [r["0020000E"]["Value"][0] for r in web.search_for_series(study)] == [series[0]]
        assert len(web.retrieve_study(study)) == 1  # P10 of what is left

        web.delete_study(study)
        assert [r["0020000D"]["Value"][0] for r in web.search_for_studies()] == [
            pydicom.dcmread(other).StudyInstanceUID
        ]
        with pytest.raises(requests.HTTPError) as missing:
            web.retrieve_study_metadata(study)
        assert missing.value.response.status_code == 404
        # Stored again after its deletion: no duplicate, a new instance.
        web.store_instances([first])
        assert len(web.search_for_instances(study)) == 1
