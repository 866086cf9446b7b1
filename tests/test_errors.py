"""The exception tree: every class's base, HTTP status and exit code."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import dicomweb_archive
from dicomweb_archive import errors
from dicomweb_archive.errors import DicomwebArchiveError
from dicomweb_archive.model.matching import InvalidQueryError

# class: (base, HTTP status, exit code)
TREE: dict[type[DicomwebArchiveError], tuple[type[Exception], int, int]] = {
    errors.DicomwebArchiveError: (Exception, 500, 1),
    errors.InvalidInputError: (errors.DicomwebArchiveError, 400, 2),
    errors.NotDicomError: (errors.InvalidInputError, 400, 2),
    errors.TruncatedDicomError: (errors.InvalidInputError, 400, 2),
    errors.MalformedDicomError: (errors.InvalidInputError, 400, 2),
    errors.InvalidUIDError: (errors.InvalidInputError, 400, 2),
    InvalidQueryError: (errors.InvalidInputError, 400, 2),
    errors.BurnedInAnnotationError: (errors.InvalidInputError, 400, 2),
    errors.MalformedRequestError: (errors.InvalidInputError, 400, 2),
    errors.MalformedMultipartError: (errors.MalformedRequestError, 400, 2),
    errors.UnauthorizedError: (errors.DicomwebArchiveError, 401, 1),
    errors.MethodNotAllowedError: (errors.DicomwebArchiveError, 405, 1),
    errors.RequestTimeoutError: (errors.DicomwebArchiveError, 408, 1),
    errors.PayloadTooLargeError: (errors.DicomwebArchiveError, 413, 1),
    errors.RequestHeaderFieldsTooLargeError: (errors.DicomwebArchiveError, 431, 1),
    errors.UnsupportedMediaTypeError: (errors.DicomwebArchiveError, 415, 1),
    errors.DuplicateInstanceError: (errors.DicomwebArchiveError, 409, 1),
    errors.NotAnInstanceError: (errors.DicomwebArchiveError, 500, 1),
    errors.TransformError: (errors.DicomwebArchiveError, 500, 1),
    errors.FastPathUnsupportedError: (errors.DicomwebArchiveError, 500, 1),
    errors.UnsupportedTransferSyntaxError: (errors.DicomwebArchiveError, 406, 1),
    errors.UnsupportedImageError: (errors.UnsupportedTransferSyntaxError, 406, 1),
    errors.ArchiveError: (errors.DicomwebArchiveError, 503, 1),
    errors.NotAnArchiveError: (errors.ArchiveError, 503, 1),
    errors.ArchiveOptionsMismatchError: (errors.ArchiveError, 503, 1),
    errors.InvalidStudyZipError: (errors.ArchiveError, 503, 1),
    errors.ArchiveUnavailableError: (errors.ArchiveError, 503, 1),
    errors.DamagedDatabaseError: (errors.ArchiveError, 503, 1),
    errors.StoreError: (errors.DicomwebArchiveError, 500, 1),
    errors.ResourceNotFoundError: (errors.StoreError, 404, 1),
    errors.UnsupportedStoreError: (errors.StoreError, 500, 2),
    errors.RangeNotSatisfiableError: (errors.DicomwebArchiveError, 416, 1),
    errors.QueryTimeoutError: (errors.DicomwebArchiveError, 503, 1),
    errors.ClusterError: (errors.DicomwebArchiveError, 500, 1),
    errors.WorkerError: (errors.DicomwebArchiveError, 500, 1),
}


def _public_tree(root: type[DicomwebArchiveError]) -> set[type[DicomwebArchiveError]]:
    found = {root}
    for sub in root.__subclasses__():
        if not sub.__name__.startswith("_"):
            found |= _public_tree(sub)
    return found


@pytest.mark.parametrize("kind", TREE, ids=lambda kind: kind.__name__)
def test_status_exit_code_and_base(kind: type[DicomwebArchiveError]) -> None:
    base, status, exit_code = TREE[kind]
    assert kind.__bases__ == (base,)
    assert (kind.http_status, kind.exit_code) == (status, exit_code)


def test_every_public_class_is_listed_and_drawn() -> None:
    for module in pkgutil.walk_packages(dicomweb_archive.__path__, "dicomweb_archive."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    assert _public_tree(DicomwebArchiveError) == set(TREE)
    assert errors.__doc__ is not None
    for kind in TREE:
        assert kind.__name__ in errors.__doc__


def test_headers_the_answer_needs() -> None:
    assert dict(errors.DicomwebArchiveError("x").headers) == {}
    challenge = errors.UnauthorizedError("no token", challenge='Bearer realm="dicomweb"')
    assert dict(challenge.headers) == {"WWW-Authenticate": 'Bearer realm="dicomweb"'}
    refused = errors.MethodNotAllowedError("no", allow="GET, HEAD")
    assert dict(refused.headers) == {"Allow": "GET, HEAD"}
    beyond = errors.RangeNotSatisfiableError("beyond", total=10)
    assert (beyond.total, dict(beyond.headers)) == (10, {"Content-Range": "bytes */10"})
    assert str(beyond) == "beyond"


def test_the_json_body_of_an_answer() -> None:
    error = errors.RequestHeaderFieldsTooLargeError("the request head exceeds 65536 bytes")
    assert error.to_json() == {
        "status": 431,
        "error": "RequestHeaderFieldsTooLargeError",
        "detail": "the request head exceeds 65536 bytes",
    }
