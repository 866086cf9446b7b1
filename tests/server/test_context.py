"""The services' context: the write token and the index's lifetime."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from starlette.requests import Request

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.errors import UnauthorizedError
from dicomweb_archive.server.context import Context
from dicomweb_archive.store.archive import Archive, open_archive


def _request(authorization: str | None) -> Request:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request({"type": "http", "method": "POST", "path": "/studies", "headers": headers})


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    root: Path = tmp_path_factory.mktemp("context") / "archive"
    assert (
        Converter(root, ConvertOptions(workers=1)).convert([get_testdata_file("CT_small.dcm")]).ok
    )
    return open_archive(root)


def test_writes_need_the_bearer_token_when_there_is_one(archive: Archive) -> None:
    Context(archive).authorize_write(_request(None))  # no token: writes are open
    guarded = Context(archive, write_token="s3cret")
    guarded.authorize_write(_request("Bearer s3cret"))
    guarded.authorize_write(_request("bearer  s3cret "))
    for refused, cause in (
        (None, "needs a bearer token"),
        ("Basic czNjcmV0", "needs a bearer token"),
        ("Bearer", "needs a bearer token"),
        ("Bearer s3cret2", "not valid"),
        ("Bearer S3CRET", "not valid"),
    ):
        with pytest.raises(UnauthorizedError, match=cause) as raised:
            guarded.authorize_write(_request(refused))
        assert raised.value.headers["WWW-Authenticate"].startswith('Bearer realm="dicomweb"')


def test_the_index_is_the_lifespans(archive: Archive) -> None:
    with pytest.raises(RuntimeError, match="lifespan"):
        Context(archive).search_index()
