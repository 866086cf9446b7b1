"""The HTTP headers a static host must send with each stored file of an archive.

A web server can be told per location what to send (``deploy/nginx.conf``); an
object store sends whatever was stored *with each object* and infers nothing
from its name.  So every file written to a bucket carries, as its own metadata,
the headers below: what ``dwa serve`` and the nginx configuration answer for
the same resource.

- DICOMweb documents (``metadata.gz``, ``index.json.gz``, the study list's pages):
  ``application/dicom+json``
  with ``Content-Encoding: gzip`` (the bytes are gzip, served as they are) and
  ``Cache-Control: no-cache`` (they change as studies grow; revalidate by ETag).
- Frames, alternate frames and bulk data: the stored single-part multipart
  body's full type, ``multipart/related; type="<part type>"; boundary=…``,
  the part type read from the body's own part header.
- A file of an extension folder (``…/_{vendor}_{name}/{file}``): the content
  type of its name's ending (:func:`~dicomweb_archive.model.extensions.content_type`),
  whatever the name, never gzip-encoded.
- Private gzipped JSON (``info.json.gz``, ``deduplicated.json.gz``):
  ``application/json`` with gzip; the manifest ``application/json``; a
  packed study ``application/zip``; anything else (bare frames of a
  ``--frames raw`` archive) ``application/octet-stream``.

A host serves each file the moment it is there, and an object store has no
rename to publish many files at once; so files are published in
:func:`publication_order`: what a document points to before the document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from dicomweb_archive.media import DICOM_JSON, OCTET_STREAM, ZIP
from dicomweb_archive.model import extensions, multipart, paths

JSON: Final = "application/json"
#: Stored bytes a host needs to choose the headers: a multipart body's part header.
HEAD_SIZE: Final = 1024
_DOCUMENTS: Final = frozenset({paths.METADATA, paths.INDEX})
_BODIES: Final = frozenset({paths.FRAMES, paths.HTJ2K, "bulkdata"})


def static_headers(path: str, head: bytes | bytearray) -> dict[str, str]:
    """The headers to serve the archive file ``path`` with; ``head`` is its first bytes.

    Keys are HTTP header names; see the module for the rules.
    """
    parts = path.split("/")
    name = parts[-1]
    if len(parts) > 2 and extensions.is_folder_name(parts[-2]):
        return {"Content-Type": extensions.content_type(name), "Cache-Control": "no-cache"}
    if name in _DOCUMENTS or path.startswith(f"{paths.STUDY_LIST_PAGES}/"):
        return {"Content-Type": DICOM_JSON, "Content-Encoding": "gzip", "Cache-Control": "no-cache"}
    if name.endswith(".json.gz"):
        return {"Content-Type": JSON, "Content-Encoding": "gzip", "Cache-Control": "no-cache"}
    if path == paths.MANIFEST:
        return {"Content-Type": JSON, "Cache-Control": "no-cache"}
    if name.endswith(".zip"):
        return {"Content-Type": ZIP}
    part = multipart.part_content_type(head) if _BODIES & set(parts[:-1]) else None
    if part is None:
        return {"Content-Type": OCTET_STREAM}
    media_type = part.partition(";")[0].strip()
    return {"Content-Type": multipart.response_content_type(media_type)}


def publication_rank(path: str) -> int:
    """Where ``path`` comes in :func:`publication_order` (lower first).

    0 the manifest; 1 an instance's frames, alternates, bulk data and
    ``info.json.gz``; 2 its ``metadata.gz`` (the instance's commit point);
    3 a series' documents; 4 a study's; 5 the archive's study list (and its pages).
    """
    if path == paths.MANIFEST:
        return 0
    parts = path.split("/")
    if parts[:1] != ["studies"] or len(parts) == 2 or path.startswith(f"{paths.STUDY_LIST_PAGES}/"):
        return 5
    if len(parts) >= 7 and parts[4] == "instances":  # studies/{st}/series/{se}/instances/{sop}/…
        return 2 if len(parts) == 7 and parts[6] == paths.METADATA else 1
    if parts[2:3] == ["bulkdata"]:
        return 1
    if len(parts) >= 5:  # studies/{st}/series/{se}/…
        return 3
    return 4


def publication_order(names: Iterable[str]) -> list[str]:
    """``names`` in the order a static host may see them appear (see the module)."""
    return sorted(names, key=lambda name: (publication_rank(name), name))
