"""The one exception tree of dicomweb_archive.

::

    DicomwebArchiveError                 exit 1
    ├── InvalidInputError                exit 1 per file, HTTP 400
    │   ├── NotDicomError                not a DICOM file at all
    │   ├── TruncatedDicomError          the file ends before its data does
    │   ├── MalformedDicomError          it parses, but breaks the standard
    │   └── InvalidUIDError              a UID that cannot name a resource
    ├── NotAnInstanceError               valid DICOM, but no instance (DICOMDIR)
    ├── FastPathUnsupportedError         the fast P10 writer leaves this instance to
    │                                    pydicom (caught by export_instance, never seen)
    ├── UnsupportedTransferSyntaxError   HTTP 406
    │   └── UnsupportedImageError        the image cannot be encoded in that syntax
    ├── ArchiveError                     the archive itself is unusable
    │   ├── ArchiveOptionsMismatchError  options differ from the archive's manifest
    │   └── InvalidStudyZipError         a study ZIP is damaged or not one of ours
    └── StoreError
        └── ResourceNotFoundError        HTTP 404

Edges translate these: the CLI into exit codes and one-line messages, the server
into HTTP status codes.  Library code raises them and never prints.
"""

from __future__ import annotations


class DicomwebArchiveError(Exception):
    """Base of every error this package raises on purpose."""


class InvalidInputError(DicomwebArchiveError):
    """An input cannot be converted; other inputs are unaffected."""


class NotDicomError(InvalidInputError):
    """The input is not a DICOM P10 file or dataset."""


class TruncatedDicomError(InvalidInputError):
    """The input ends before the data it announces."""


class MalformedDicomError(InvalidInputError):
    """The input parses but violates the standard in a way we cannot store."""


class InvalidUIDError(InvalidInputError):
    """A UID is missing or is not a valid DICOM UID."""


class NotAnInstanceError(DicomwebArchiveError):
    """A valid DICOM file that holds no composite instance (a DICOMDIR); skipped."""


class FastPathUnsupportedError(DicomwebArchiveError):
    """The fast P10 writer does not handle this instance; pydicom's path does.

    Raised by :mod:`dicomweb_archive.export.writer` before it returns anything;
    :func:`~dicomweb_archive.export.p10.export_instance` catches it and
    regenerates the file with pydicom instead.
    """


class UnsupportedTransferSyntaxError(DicomwebArchiveError):
    """The transfer syntax cannot be handled for the requested operation."""


class UnsupportedImageError(UnsupportedTransferSyntaxError):
    """The image's pixel description cannot be encoded in the requested syntax.

    Bit-packed or 32-bit samples for HTJ2K, for instance: the instance is left
    as it is, which is a refusal rather than a failure.
    """


class ArchiveError(DicomwebArchiveError):
    """The archive is not usable as it stands."""


class ArchiveOptionsMismatchError(ArchiveError):
    """A conversion asked for options that differ from the archive's own."""


class InvalidStudyZipError(ArchiveError):
    """A study ZIP is damaged, or its layout is not the one ``dwa pack`` writes."""


class StoreError(DicomwebArchiveError):
    """Reading or writing the archive failed."""


class ResourceNotFoundError(StoreError):
    """The requested resource does not exist in the archive."""
