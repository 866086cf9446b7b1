"""The validators of generated retrieves: ETag, Last-Modified, 304, 412 and a HEAD
that makes no P10 file, over study folders and packed studies."""

from __future__ import annotations

import email.utils
import io
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid
from starlette.testclient import TestClient

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.model.corrections import Correction
from dicomweb_archive.server import retrieve
from dicomweb_archive.server.app import create_app
from dicomweb_archive.server.joined import ChangedWhileSent
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.correction import correct
from dicomweb_archive.store.removal import Target
from tests.conftest import write_instance
from tests.server.conftest import EVRLE, arrange, parts
from tests.server.live import live_server

KEY = b"a key for the de-identified retrieves"
MULTIPART = 'multipart/related; type="application/dicom"'


@dataclass
class Served:
    """An archive of one study (one series of three instances) and its server."""

    root: Path
    layout: str
    client: TestClient
    study: str
    series: str
    sops: list[str]
    sources: Path

    @property
    def study_url(self) -> str:
        return f"/dicomweb/studies/{self.study}"

    @property
    def series_url(self) -> str:
        return f"{self.study_url}/series/{self.series}"

    def instance_url(self, sop: str) -> str:
        return f"{self.series_url}/instances/{sop}"

    def repack(self) -> None:
        """In the packed layout, pack the study again after a write unpacked it."""
        arrange(self.root, self.layout)


@pytest.fixture(params=["folders", "zips"])
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    study, series = generate_uid(), generate_uid()
    sources = tmp_path / "in"
    files = [
        write_instance(sources, study=study, series=series, instance_number=n) for n in (1, 2, 3)
    ]
    root = tmp_path / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([str(f) for f in files]).ok
    arrange(root, request.param)
    (tmp_path / "key").write_bytes(KEY)
    app = create_app(root, deidentify_key=str(tmp_path / "key"), on_duplicate="overwrite")
    sops = [str(pydicom.dcmread(f).SOPInstanceUID) for f in files]
    with TestClient(app) as client:
        yield Served(root, request.param, client, study, series, sops, sources)


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The instances whose P10 file the server made (the real exporters, counted)."""
    made: list[str] = []
    for name in ("export_instance", "to_explicit_little_endian"):
        real = getattr(retrieve, name)

        def counted(*args: Any, real: Callable[..., bytes] = real) -> bytes:
            made.append(str(args[3]))
            return real(*args)

        monkeypatch.setattr(retrieve, name, counted)
    return made


#: Every form of answer: (name, level, query parameters, headers).
FORMS: list[tuple[str, str, dict[str, str], dict[str, str]]] = [
    ("multipart", "study", {}, {"Accept": MULTIPART}),
    ("multipart stored", "study", {}, {"Accept": f"{MULTIPART}; transfer-syntax=*"}),
    ("multipart series", "series", {}, {"Accept": MULTIPART}),
    ("zip", "study", {"accept": "application/zip"}, {}),
    ("zip stored", "study", {"accept": "application/zip; transfer-syntax=*"}, {}),
    ("zip series", "series", {"accept": "application/zip"}, {}),
    ("zip deidentified", "study", {"accept": "application/zip", "deidentify": "basic"}, {}),
    (
        "zip deidentified, uids kept",
        "study",
        {"accept": "application/zip", "deidentify": "basic,retain-uids"},
        {},
    ),
    ("multipart deidentified", "series", {"deidentify": "basic"}, {"Accept": MULTIPART}),
    ("multipart instance", "instance", {}, {"Accept": MULTIPART}),
    ("single instance", "instance", {}, {"Accept": "application/dicom"}),
    ("single instance stored", "instance", {}, {"Accept": "application/dicom; transfer-syntax=*"}),
]


def _url(served: Served, level: str) -> str:
    if level == "study":
        return served.study_url
    if level == "series":
        return served.series_url
    return served.instance_url(served.sops[0])


def _head(served: Served, level: str, params: dict[str, str], headers: dict[str, str]) -> str:
    response = served.client.head(_url(served, level), params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


def etags(served: Served) -> dict[str, str]:
    """The ETag of every form, from a HEAD each."""
    return {name: _head(served, level, params, headers) for name, level, params, headers in FORMS}


@pytest.mark.parametrize(("name", "level", "params", "headers"), FORMS, ids=[f[0] for f in FORMS])
def test_two_gets_one_head_and_a_304(
    served: Served,
    exports: list[str],
    name: str,
    level: str,
    params: dict[str, str],
    headers: dict[str, str],
) -> None:
    url = _url(served, level)
    first, second = (served.client.get(url, params=params, headers=headers) for _ in range(2))
    assert (first.status_code, second.status_code) == (200, 200), first.text
    assert first.content == second.content
    etag = first.headers["etag"]
    assert etag == second.headers["etag"] and etag.startswith('"') and not etag.startswith("W/")
    assert "Accept" in first.headers["vary"].split(", ")
    single = name.startswith("single")
    assert first.headers["accept-ranges"] == ("bytes" if single else "none")
    instances = 1 if level == "instance" else 3
    assert len(exports) == 2 * instances

    head = served.client.head(url, params=params, headers=headers)
    assert head.status_code == 200 and head.content == b""
    for field in ("etag", "content-type", "content-disposition", "vary", "accept-ranges"):
        assert head.headers.get(field) == first.headers.get(field), field
    assert "content-length" not in head.headers  # the GET's is known once made
    if "zip" in name:
        assert head.headers["content-disposition"].startswith('attachment; filename="')

    cached = served.client.get(url, params=params, headers={**headers, "If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["etag"] == etag and "content-type" not in cached.headers
    weak = served.client.head(url, params=params, headers={**headers, "If-None-Match": f"W/{etag}"})
    assert weak.status_code == 304
    other = served.client.head(url, params=params, headers={**headers, "If-None-Match": '"x"'})
    assert other.status_code == 200
    failed = served.client.get(url, params=params, headers={**headers, "If-Match": '"x"'})
    assert failed.status_code == 412 and failed.content == b""
    matched = served.client.get(url, params=params, headers={**headers, "If-Match": etag})
    assert matched.status_code == 200 and matched.content == first.content
    assert len(exports) == 3 * instances  # HEAD, 304 and 412 made no P10 file


def test_every_form_has_its_own_etag(served: Served) -> None:
    found = etags(served)
    assert len(set(found.values())) == len(found), found
    assert etags(served) == found  # and asked again, the same


def test_a_single_instance_has_byte_ranges(served: Served) -> None:
    url = served.instance_url(served.sops[1])
    whole = served.client.get(url, headers={"Accept": "application/dicom"})
    etag = whole.headers["etag"]
    part = served.client.get(
        url, headers={"Accept": "application/dicom", "Range": "bytes=128-131", "If-Range": etag}
    )
    assert part.status_code == 206 and part.content == whole.content[128:132]
    assert part.headers["content-range"] == f"bytes 128-131/{len(whole.content)}"
    stale = served.client.get(
        url, headers={"Accept": "application/dicom", "Range": "bytes=128-131", "If-Range": '"x"'}
    )
    assert stale.status_code == 200 and stale.content == whole.content


def test_stored_answers_evaluate_the_same_preconditions(served: Served) -> None:
    """A stored frame and a metadata document: If-Match and If-None-Match alike."""
    instance = served.instance_url(served.sops[0])
    for url in (f"{instance}/frames/1", f"{served.series_url}/metadata"):
        whole = served.client.get(url)
        etag = whole.headers["etag"]
        assert served.client.get(url, headers={"If-Match": etag}).content == whole.content
        refused = served.client.get(url, headers={"If-Match": '"x"'})
        assert refused.status_code == 412 and refused.content == b""
        assert served.client.get(url, headers={"If-None-Match": etag}).status_code == 304


def _stow(served: Served, path: Path) -> None:
    answer = served.client.post(
        "/dicomweb/studies",
        content=path.read_bytes(),
        headers={"Content-Type": "application/dicom"},
    )
    assert answer.status_code == 200, answer.text


def _changed(before: dict[str, str], after: dict[str, str], *unchanged: str) -> None:
    """Every form's ETag changed but those ``unchanged``'s."""
    for name in before:
        if name in unchanged:
            assert after[name] == before[name], name
        else:
            assert after[name] != before[name], name


INSTANCE_FORMS = ("multipart instance", "single instance", "single instance stored")


def test_the_etag_follows_every_change_of_the_files(served: Served, tmp_path: Path) -> None:
    folders = served.layout == "folders"
    # In a packed study, every write unpacks it (then packed again here): all its
    # files change places, so each instance's answers change too.
    untouched = INSTANCE_FORMS if folders else ()
    start = etags(served)

    # STOW-RS of a new instance into the study.
    added = write_instance(
        tmp_path / "more", study=served.study, series=served.series, instance_number=4
    )
    _stow(served, added)
    served.repack()
    after_add = etags(served)
    _changed(start, after_add, *untouched)
    assert etags(served) == after_add

    # STOW-RS replacing an instance by one with other pixels only: the frames
    # change, the metadata and info do not.
    first = pydicom.dcmread(served.sources / f"{served.sops[0]}.dcm")
    first.PixelData = bytes(len(first.PixelData))
    replaced = tmp_path / "replaced.dcm"
    first.save_as(replaced, enforce_file_format=True)
    _stow(served, replaced)
    served.repack()
    after_replace = etags(served)
    _changed(after_add, after_replace)  # the instance's own answers too

    # The same file stored again: nothing changes (in a packed study, the
    # write unpacks it and the repack makes a new ZIP file: not compared).
    _stow(served, replaced)
    if folders:
        assert etags(served) == after_replace

    # dwa update of one attribute.
    with open_archive(served.root) as archive:
        correct(archive, Target(served.study), [Correction("PatientName", "Other^Name")], by="test")
    served.repack()
    after_update = etags(served)
    _changed(after_replace, after_update)

    # DELETE of another instance.
    gone = served.client.delete(served.instance_url(served.sops[2]))
    assert gone.status_code == 204, gone.text
    served.repack()
    after_delete = etags(served)
    _changed(after_update, after_delete, *untouched)
    study = served.client.get(served.study_url, headers={"Accept": MULTIPART})
    assert study.headers["etag"] == after_delete["multipart"]
    assert len(parts(study.content)) == 3


def test_the_etag_follows_the_key_not_the_server(served: Served, tmp_path: Path) -> None:
    """Another server process over the same files: the same ETags, but for the
    de-identified answers when its key is another."""
    mine = etags(served)
    (tmp_path / "other.key").write_bytes(KEY + b" and more")
    for key, same in ((tmp_path / "key", True), (tmp_path / "other.key", False)):
        app = create_app(served.root, deidentify_key=str(key))
        with TestClient(app) as other:
            theirs = etags(Served(**{**served.__dict__, "client": other}))
        for name in mine:
            expected = same or "deidentified" not in name
            assert (theirs[name] == mine[name]) is expected, name


def _age_files(root: Path, seconds: float) -> float:
    """Date every file of the archive's studies ``seconds`` ago; returns that time."""
    then = (os.stat(root).st_mtime // 1) - seconds
    for folder, _, names in os.walk(root / "studies"):
        for name in names:
            os.utime(Path(folder) / name, (then, then))
    return then


def test_last_modified_is_the_newest_file(served: Served) -> None:
    then = _age_files(served.root, 86_400)
    url, accept = served.study_url, {"Accept": MULTIPART}
    head = served.client.head(url, headers=accept)
    stamp = head.headers["last-modified"]
    assert email.utils.parsedate_to_datetime(stamp).timestamp() == then
    assert served.client.head(url, headers={**accept, "If-Modified-Since": stamp}).status_code == (
        304
    )
    earlier = email.utils.formatdate(then - 1, usegmt=True)
    assert served.client.head(
        url, headers={**accept, "If-Modified-Since": earlier}
    ).status_code == (200)
    # An entity tag, when sent, decides alone.
    both = {**accept, "If-Modified-Since": stamp, "If-None-Match": '"x"'}
    assert served.client.head(url, headers=both).status_code == 200
    assert served.client.get(
        url, headers={**accept, "If-Unmodified-Since": earlier}
    ).status_code == (412)
    # A newer file moves the date (and the tag).
    _age_files(served.root, 0)
    newer = served.client.head(url, headers=accept)
    assert newer.headers["etag"] != head.headers["etag"]
    assert served.client.head(url, headers={**accept, "If-Modified-Since": stamp}).status_code == (
        200
    )


def _replace_file(path: Path) -> None:
    """The same bytes written anew, as a writer replaces a file."""
    copy = path.with_name(path.name + ".copy")
    shutil.copyfile(path, copy)
    os.replace(copy, path)


def _one_stored_file(served: Served, sop: str) -> Path:
    if served.layout == "zips":
        return served.root / "studies" / f"{served.study}.zip"
    return (
        served.root
        / "studies"
        / served.study
        / "series"
        / served.series
        / "instances"
        / sop
        / "info.json.gz"
    )


def test_a_file_replaced_while_the_answer_is_made(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream is broken off (never completed under its ETag); a single instance
    is made again."""
    real = retrieve.export_instance
    calls: list[str] = []

    def replacing(*args: Any) -> bytes:
        calls.append(str(args[3]))
        if len(calls) == 1:  # while the first instance is made, a writer replaces a file
            _replace_file(_one_stored_file(served, served.sops[-1]))
        return real(*args)

    monkeypatch.setattr(retrieve, "export_instance", replacing)
    before = served.client.head(served.study_url, headers={"Accept": MULTIPART}).headers["etag"]
    with pytest.raises(ChangedWhileSent):
        served.client.get(served.study_url, headers={"Accept": MULTIPART})
    calls.clear()
    url = served.instance_url(served.sops[-1])
    single = served.client.get(url, headers={"Accept": "application/dicom"})
    assert single.status_code == 200 and len(calls) == 2  # made again once
    assert (
        single.headers["etag"]
        == served.client.head(url, headers={"Accept": "application/dicom"}).headers["etag"]
    )
    assert (
        served.client.head(served.study_url, headers={"Accept": MULTIPART}).headers["etag"]
        != before
    )


def test_over_http_with_real_clients(served: Served) -> None:
    """HEAD and 304 as uvicorn sends them; dicomweb-client's retrieve unchanged."""
    app = create_app(served.root)
    with live_server(app) as root, httpx.Client(timeout=30) as http:
        url = f"{root}/studies/{served.study}"
        got = http.get(url, params={"accept": "application/zip"})
        assert got.status_code == 200 and got.headers["transfer-encoding"] == "chunked"
        with zipfile.ZipFile(io.BytesIO(got.content)) as bundle:
            assert len(bundle.namelist()) == 3
        head = http.head(url, params={"accept": "application/zip"})
        assert head.status_code == 200 and head.content == b""
        assert "content-length" not in head.headers and "transfer-encoding" not in head.headers
        assert head.headers["etag"] == got.headers["etag"]
        again = http.get(
            url,
            params={"accept": "application/zip"},
            headers={"If-None-Match": got.headers["etag"]},
        )
        assert again.status_code == 304 and again.content == b""
        # A list header on several field lines is one list.
        etag = got.headers["etag"]
        for name, status in (("If-Match", 200), ("If-None-Match", 304)):
            lines = [(name, '"another"'), (name, etag)]
            zipped = {"accept": "application/zip"}
            with http.stream("GET", url, params=zipped, headers=lines) as split:
                assert split.status_code == status, name
        study = DICOMwebClient(root).retrieve_study(served.study)
        assert sorted(ds.SOPInstanceUID for ds in study) == sorted(served.sops)
        assert {ds.file_meta.TransferSyntaxUID for ds in study} == {EVRLE}


@pytest.mark.parametrize(
    ("params", "headers"),
    [({}, {"Accept": MULTIPART}), ({"accept": "application/zip"}, {})],
    ids=["multipart", "zip"],
)
def test_a_file_changed_once_read_leaves_the_answer_whole(
    served: Served, monkeypatch: pytest.MonkeyPatch, params: dict[str, str], headers: dict[str, str]
) -> None:
    """Files replaced after their bytes were read (an instance already sent, the
    study's listing, its QIDO documents: a STOW-RS into the study while it is
    downloaded) do not break the answer: its bytes are those its ETag names."""
    before = served.client.get(served.study_url, params=params, headers=headers)
    real = retrieve.export_instance
    calls: list[str] = []

    def replacing(*args: Any) -> bytes:
        calls.append(str(args[3]))
        if len(calls) == len(served.sops):  # the last instance: all else was read
            listing = (
                paths.study_metadata(served.study),
                paths.study_row(served.study),
                paths.series_index(served.study),
                paths.instances_index(served.study, served.series),
            )
            _replace_file(_one_stored_file(served, served.sops[0]))
            for path in (served.root / relative for relative in listing):
                if path.exists():  # not in a packed study
                    _replace_file(path)
        return real(*args)

    monkeypatch.setattr(retrieve, "export_instance", replacing)
    if served.layout == "zips":  # every file is the ZIP's: the last one changed too
        with pytest.raises(ChangedWhileSent):
            served.client.get(served.study_url, params=params, headers=headers)
        return
    during = served.client.get(served.study_url, params=params, headers=headers)
    assert during.status_code == 200 and during.content == before.content
    assert during.headers["etag"] == before.headers["etag"]
    after = served.client.head(served.study_url, params=params, headers=headers)
    assert after.headers["etag"] != before.headers["etag"]
