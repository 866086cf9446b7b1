"""The one exception tree of dicomweb_archive.

Every class carries what the edges answer with: ``http_status`` (the server's
status code, with a JSON body) and ``exit_code`` (the ``dwa`` command's)::

    DicomwebArchiveError                 HTTP 500  exit 1
    ├── InvalidInputError                     400       2   (1 per file in a run)
    │   ├── NotDicomError                not a DICOM file at all
    │   ├── TruncatedDicomError          the file ends before its data does
    │   ├── MalformedDicomError          it parses, but breaks the standard
    │   ├── InvalidUIDError              a UID that cannot name a resource
    │   ├── InvalidQueryError            a QIDO-RS query term (model.matching)
    │   ├── BurnedInAnnotationError      de-identification refuses text in the pixels
    │   └── MalformedRequestError        an HTTP request that cannot be read
    │       └── MalformedMultipartError  a multipart body that breaks RFC 2046
    ├── UnauthorizedError                     401       1
    ├── MethodNotAllowedError                 405       1
    ├── RequestTimeoutError                   408       1   a request head not sent in time
    ├── PayloadTooLargeError                  413       1
    ├── UnsupportedMediaTypeError             415       1
    ├── RequestHeaderFieldsTooLargeError      431       1   a request head beyond the limit
    ├── DuplicateInstanceError                409       1   a SOP Instance UID stored before
    │                                    with other content or elsewhere (rejected)
    ├── NotAnInstanceError               valid DICOM, but no instance (DICOMDIR)
    ├── TransformError                   a custom transform raised on an input
    ├── FastPathUnsupportedError         the fast P10 writer leaves this instance to
    │                                    pydicom (caught by export_instance, never seen)
    ├── UnsupportedTransferSyntaxError        406       1
    │   └── UnsupportedImageError        the image cannot be encoded in that syntax
    ├── ArchiveError                          503       1   the archive itself is unusable
    │   ├── NotAnArchiveError            no dicomweb-archive manifest there
    │   ├── ArchiveOptionsMismatchError  options differ from the archive's manifest
    │   ├── InvalidStudyZipError         a study ZIP is damaged or not one of ours
    │   ├── ArchiveUnavailableError      the archive cannot take writes now
    │   └── DamagedDatabaseError         a database in ``.dwa/`` found damaged
    ├── StoreError                            500       1
    │   ├── ResourceNotFoundError             404       1
    │   └── UnsupportedStoreError                       2   a store URL scheme with no backend (yet)
    ├── RangeNotSatisfiableError              416       1
    ├── ClusterError                                    1   no Dask cluster to run on
    ├── WorkerError                                     1   worker processes die as they start
    └── QueryTimeoutError                     503       1   a search ran past its time budget

Edges translate these: the CLI (``cli/main.py``) into one line on standard
error and the exit code; the server (``server/app.py``, and ``server/connection.py``
below the application) into the status code and the body of
:meth:`~DicomwebArchiveError.to_json`.  Library code raises them and never prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from dicomweb_archive.types import InstanceKey


class DicomwebArchiveError(Exception):
    """Base of every error this package raises on purpose."""

    #: The status code the server answers with.
    http_status: ClassVar[int] = 500
    #: The exit status of the ``dwa`` command it ends.
    exit_code: ClassVar[int] = 1
    #: Headers the server's answer needs besides the JSON body.
    headers: Mapping[str, str] = MappingProxyType({})

    def to_json(self) -> dict[str, int | str]:
        """The body of the server's answer: ``{"status", "error", "detail"}``."""
        return {"status": self.http_status, "error": type(self).__name__, "detail": str(self)}


class InvalidInputError(DicomwebArchiveError):
    """An input cannot be used; other inputs are unaffected."""

    http_status = 400
    exit_code = 2


class NotDicomError(InvalidInputError):
    """The input is not a DICOM P10 file or dataset."""


class TruncatedDicomError(InvalidInputError):
    """The input ends before the data it announces."""


class MalformedDicomError(InvalidInputError):
    """The input parses but violates the standard in a way we cannot store."""


class InvalidUIDError(InvalidInputError):
    """A UID is missing or is not a valid DICOM UID."""


class BurnedInAnnotationError(InvalidInputError):
    """De-identification refused pixels that may show identifying text (PS3.15 E.3.1)."""


class MalformedRequestError(InvalidInputError):
    """An HTTP request whose headers or body cannot be read; nothing is done."""


class MalformedMultipartError(MalformedRequestError):
    """A ``multipart/related`` body that does not follow RFC 2046's framing."""


class UnauthorizedError(DicomwebArchiveError):
    """The request needs credentials it lacks; ``challenge`` says which."""

    http_status = 401

    def __init__(self, detail: str, *, challenge: str) -> None:
        super().__init__(detail)
        self.headers = MappingProxyType({"WWW-Authenticate": challenge})


class MethodNotAllowedError(DicomwebArchiveError):
    """A request method the resource does not answer; ``allow`` lists those it does."""

    http_status = 405

    def __init__(self, detail: str, *, allow: str) -> None:
        super().__init__(detail)
        self.headers = MappingProxyType({"Allow": allow})


class RequestTimeoutError(DicomwebArchiveError):
    """A request head that did not arrive in time; the connection is closed."""

    http_status = 408


class PayloadTooLargeError(DicomwebArchiveError):
    """A request body beyond the upload limit."""

    http_status = 413


class UnsupportedMediaTypeError(DicomwebArchiveError):
    """A request body of a media type the service does not take."""

    http_status = 415


class RequestHeaderFieldsTooLargeError(DicomwebArchiveError):
    """A request head larger than the server takes (RFC 6585); the connection is closed."""

    http_status = 431


class DuplicateInstanceError(DicomwebArchiveError):
    """A SOP Instance UID that is in the archive already, with other content or
    in another study or series, refused by the archive's duplicates policy.

    ``failure_reason`` is what STOW-RS and C-STORE answer: 0111H "Duplicate SOP
    Instance" (PS3.7 Annex C), which PS3.18 Table I.2-2 allows as an additional code.
    """

    http_status = 409
    failure_reason: ClassVar[int] = 0x0111

    def __init__(self, message: str, key: InstanceKey | None = None) -> None:
        super().__init__(message)
        #: The refused instance's UIDs, as it arrived.
        self.key = key


class NotAnInstanceError(DicomwebArchiveError):
    """A valid DICOM file that holds no composite instance (a DICOMDIR); skipped."""


class TransformError(DicomwebArchiveError):
    """A custom transform (``--transform``) raised on an input; other inputs go on."""


class FastPathUnsupportedError(DicomwebArchiveError):
    """The fast P10 writer does not handle this instance; pydicom's path does.

    Raised by :mod:`dicomweb_archive.export.writer` before it returns anything;
    :func:`~dicomweb_archive.export.p10.export_instance` catches it and
    regenerates the file with pydicom instead.
    """


class UnsupportedTransferSyntaxError(DicomwebArchiveError):
    """The transfer syntax cannot be handled for the requested operation."""

    http_status = 406


class UnsupportedImageError(UnsupportedTransferSyntaxError):
    """The image's pixel description cannot be encoded in the requested syntax.

    Bit-packed or 32-bit samples for HTJ2K, for instance: the instance is left
    as it is, which is a refusal rather than a failure.
    """


class ArchiveError(DicomwebArchiveError):
    """The archive is not usable as it stands.

    A server answers 503: the fault is the archive's, not the request's, and
    another replica (or the same one, repaired) can answer it.
    """

    http_status = 503


class NotAnArchiveError(ArchiveError):
    """The location holds no dicomweb-archive manifest (or another format's)."""


class ArchiveOptionsMismatchError(ArchiveError):
    """A conversion asked for options that differ from the archive's own."""


class InvalidStudyZipError(ArchiveError):
    """A study ZIP is damaged, or its layout is not the one ``dwa pack`` writes."""


class ArchiveUnavailableError(ArchiveError):
    """The archive cannot take writes (read-only, full): try again later, or elsewhere."""


class DamagedDatabaseError(ArchiveError):
    """SQLite found a database of the archive's work folder damaged (a power
    failure, lost blocks): it is dropped and made anew, and this is raised
    only when that did not help."""


class StoreError(DicomwebArchiveError):
    """Reading or writing the archive failed."""


class ResourceNotFoundError(StoreError):
    """The requested resource does not exist in the archive."""

    http_status = 404


class RangeNotSatisfiableError(DicomwebArchiveError):
    """A ``Range`` that starts beyond the ``total`` bytes of the representation."""

    http_status = 416

    def __init__(self, detail: str, *, total: int) -> None:
        super().__init__(detail)
        self.total = total
        self.headers = MappingProxyType({"Content-Range": f"bytes */{total}"})


class QueryTimeoutError(DicomwebArchiveError):
    """A search ran past its time budget and was abandoned."""

    http_status = 503


class UnsupportedStoreError(StoreError):
    """A store URL whose scheme (``s3://``…) has no backend in this version."""

    exit_code = 2


class ClusterError(DicomwebArchiveError):
    """The Dask cluster a run was given cannot be reached or used."""


class WorkerError(DicomwebArchiveError):
    """This machine's worker processes die before they can take any task."""
