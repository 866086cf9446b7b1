"""A study packed as one ZIP file: writing it, and random access to its entries.

Entry names are the archive paths of the study's files, ``studies/{study}/…``
(``metadata.gz``, ``series/{se}/instances/{sop}/frames/1``, ``bulkdata/ab/…``):
unzipping into an archive folder restores the study in place, and the path the
server computes for a folder archive is also the entry's name.  Every entry is
STORED, never deflated: a frame, bulk value or gzipped document is one
contiguous byte range of the ZIP file, served as a slice without decoding.
Entries are sorted by name and carry a fixed date, so packing the same study
twice gives the same bytes; ZIP64 records appear where sizes or offsets need
them.  The ZIP comment is a small JSON document naming the study and the options
of the archive it was packed from (frame storage, boundary, bulk sizes).
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import orjson

from dicomweb_archive import uids
from dicomweb_archive.errors import InvalidStudyZipError, ResourceNotFoundError
from dicomweb_archive.model import paths
from dicomweb_archive.store.base import (
    Entry,
    ReadableStore,
    Stat,
    files_under,
    gunzip,
    not_found,
)
from dicomweb_archive.store.manifest import ArchiveOptions
from dicomweb_archive.store.slices import OpenedFile, Slice, file_version

ZIP_FORMAT: Final = "dicomweb-archive/study-zip"
ZIP_FORMAT_VERSION: Final = 1
#: The date of every entry, packed or downloaded: the earliest a ZIP can say
#: (1980-01-01 00:00; MS-DOS dates name no time zone).  Never the clock's, so
#: the same files give the same bytes however often and wherever they are
#: zipped, and no entry tells when it was made or stored.
ENTRY_DATE: Final = (1980, 1, 1, 0, 0, 0)
_CHUNK: Final = 1 << 20
#: The fixed part of a local file header (APPNOTE 4.3.7).
_LOCAL_HEADER: Final = struct.Struct("<4s5H3L2H")
_LOCAL_SIGNATURE: Final = b"PK\x03\x04"
_ENCRYPTED: Final = 0x1
_DATA_DESCRIPTOR: Final = 0x8
_UTF8_NAME: Final = 0x800
_ZIP64_EXTRA: Final = 0x0001


@dataclass(frozen=True)
class ZipEntry:
    """Where one entry's bytes are: ``length`` bytes from ``offset`` in the ZIP file."""

    name: str
    offset: int
    length: int
    crc32: int


def _prefix(study: str) -> str:
    return f"{paths.study_dir(study)}/"


def check_entry_name(name: str, study: str) -> None:
    """Refuse a name that is not a plain relative path inside the study."""
    parts = name.split("/")
    if (
        not name.startswith(_prefix(study))
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise InvalidStudyZipError(f"entry {name!r} is not a path inside study {study}")


# -- writing ---------------------------------------------------------------------


def study_file_names(store: ReadableStore, study: str) -> list[str]:
    """The archive paths of every file of the study's folder in ``store``, sorted."""
    names = sorted(files_under(store, paths.study_dir(study)))
    for name in names:
        check_entry_name(name, study)
    return names


def _entry_info(name: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ENTRY_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # Unix, so the mode below is read
    info.external_attr = 0o100644 << 16
    # Known before writing: zipfile chooses ZIP64 headers from it.
    info.file_size = size
    return info


def zip_comment(study: str, options: ArchiveOptions) -> bytes:
    """The ZIP comment: what the ZIP holds and how its files were made."""
    return orjson.dumps(
        {
            "format": ZIP_FORMAT,
            "formatVersion": ZIP_FORMAT_VERSION,
            "study": study,
            "archive": options.to_json(),
        },
        option=orjson.OPT_SORT_KEYS,
    )


def write_study_zip(
    store: ReadableStore, study: str, out: IO[bytes], options: ArchiveOptions
) -> int:
    """Write the study folder of the archive in ``store`` as a ZIP to ``out``.

    ``out`` must be seekable (sizes and CRCs go into the local headers, with no
    data descriptors).  Returns the number of entries.
    """
    names = study_file_names(store, study)
    if not names:
        raise ResourceNotFoundError(f"study {study} has no files to pack")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name in names:
            try:
                size = store.stat(name).size
            except ResourceNotFoundError as error:  # a link, or not a regular file
                raise InvalidStudyZipError(f"{error}; the study is not packed") from None
            info = _entry_info(name, size)
            with archive.open(info, "w") as target:
                for chunk in store.iter_bytes(name, chunk_size=_CHUNK):
                    target.write(chunk)
            if info.file_size != size:
                raise InvalidStudyZipError(f"{name} changed while it was packed")
        archive.comment = zip_comment(study, options)
    return len(names)


# -- reading ---------------------------------------------------------------------


class StudyZip:
    """Random access to the entries of one study ZIP.

    Opening reads the central directory only; an entry's data offset is read
    from its local header on first use and kept.  The file stays open until
    :meth:`close` and the last :class:`Slice` of it are gone, so a ZIP replaced
    or removed meanwhile keeps answering with the bytes it held when opened
    (see :meth:`is_current`).  Reads use
    ``os.pread``: one instance may serve several threads.
    """

    def __init__(self, path: str | os.PathLike[str], *, study: str | None = None) -> None:
        self.path = Path(path)
        self.url = str(path)
        try:
            self._file: OpenedFile | None = OpenedFile(self.path)
        except (FileNotFoundError, NotADirectoryError):
            raise ResourceNotFoundError(f"{self.path} not found") from None
        self._stat = self._file.info
        try:
            self._read_directory(study)
        except BaseException:
            self._file = None
            raise
        self._entries: dict[str, ZipEntry] = {}

    def _read_directory(self, study: str | None) -> None:
        try:
            # A buffered view of the same descriptor, for zipfile's many small reads.
            with (
                open(self.fileno(), "rb", closefd=False) as handle,
                zipfile.ZipFile(handle) as directory,
            ):
                infos = directory.infolist()
                self._end = int(directory.start_dir)
                comment = directory.comment
        # zipfile raises these on damaged directories (ValueError: bad UTF-8 names).
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, struct.error) as exc:
            raise InvalidStudyZipError(f"{self.path}: not a readable ZIP file: {exc}") from exc
        files = [info for info in infos if not info.is_dir()]
        if not files:
            raise InvalidStudyZipError(f"{self.path}: holds no files")
        first = files[0].filename.split("/")
        found = first[1] if len(first) > 2 and first[0] == "studies" else ""
        if not uids.is_valid_uid(found) or (study is not None and found != study):
            raise InvalidStudyZipError(
                f"{self.path}: entries are not under studies/{study or '<study UID>'}/"
            )
        self.study_instance_uid = found
        self._central: dict[str, tuple[int, int, int]] = {}
        for info in files:
            name = info.filename
            try:
                check_entry_name(name, found)
            except InvalidStudyZipError as exc:
                raise InvalidStudyZipError(f"{self.path}: {exc}") from None
            if info.flag_bits & _ENCRYPTED or info.compress_type != zipfile.ZIP_STORED:
                raise InvalidStudyZipError(f"{self.path}: {name} is encrypted or compressed")
            if info.compress_size != info.file_size:
                raise InvalidStudyZipError(f"{self.path}: {name} has inconsistent sizes")
            if name in self._central:
                raise InvalidStudyZipError(f"{self.path}: {name} appears twice")
            if info.header_offset + _LOCAL_HEADER.size + info.file_size > self._end:
                raise InvalidStudyZipError(f"{self.path}: {name} lies outside the file's data")
            self._central[name] = (info.header_offset, info.file_size, info.CRC)
        self.options: ArchiveOptions | None = _options(comment, found)
        self._children: dict[str, dict[str, bool]] = {}
        for name in self._central:
            parts = name.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                self._children.setdefault(folder, {})[parts[depth]] = depth < len(parts) - 1

    # -- the file ------------------------------------------------------------------

    @property
    def version(self) -> str:
        """Identity of the opened file (inode, time, size), e.g. for an ETag."""
        return file_version(self._stat)

    def is_current(self) -> bool:
        """Whether ``path`` still names the file that was opened."""
        try:
            return file_version(os.stat(self.path)) == self.version
        except OSError:
            return False

    def _opened(self) -> OpenedFile:
        if self._file is None:
            raise ValueError(f"{self.path}: read after close")
        return self._file

    def fileno(self) -> int:
        return self._opened().fd

    def close(self) -> None:
        """Done with the ZIP; the file closes once no slice of it is left either."""
        self._file = None

    def __enter__(self) -> StudyZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- entries -------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every entry name (archive paths), sorted."""
        return sorted(self._central)

    def __contains__(self, name: object) -> bool:
        return name in self._central

    def __len__(self) -> int:
        return len(self._central)

    def exists(self, name: str) -> bool:
        """Whether ``name`` is an entry, or a folder of entries."""
        return name in self._central or name in self._children

    def list(self, path: str) -> list[Entry]:
        children = self._children.get(path, {})
        return sorted(Entry(name, is_folder) for name, is_folder in children.items())

    def stat(self, name: str) -> Stat:
        try:
            return Stat(self._central[name][1], self.version, self._stat.st_mtime)
        except KeyError:
            raise not_found(name) from None

    def locate(self, name: str) -> Slice:
        entry = self.entry(name)
        return Slice(self._opened(), entry.offset, entry.length)

    def entry(self, name: str) -> ZipEntry:
        """Where the data of entry ``name`` lies in the ZIP file."""
        found = self._entries.get(name)
        if found is None:
            found = self._locate(name)
            self._entries[name] = found
        return found

    def _locate(self, name: str) -> ZipEntry:
        try:
            header_offset, size, crc = self._central[name]
        except KeyError:
            raise ResourceNotFoundError(f"{name} not found") from None
        header = self._pread(header_offset, _LOCAL_HEADER.size)
        (
            signature,
            _,
            flags,
            method,
            _,
            _,
            local_crc,
            local_compressed,
            local_size,
            name_length,
            extra_length,
        ) = _LOCAL_HEADER.unpack(header)
        if signature != _LOCAL_SIGNATURE or method != zipfile.ZIP_STORED or flags & _ENCRYPTED:
            raise InvalidStudyZipError(f"{self.path}: bad local header for {name}")
        tail = self._pread(header_offset + _LOCAL_HEADER.size, name_length + extra_length)
        raw_name = tail[:name_length]
        local_name = raw_name.decode("utf-8" if flags & _UTF8_NAME else "cp437")
        if local_name != name:
            raise InvalidStudyZipError(f"{self.path}: local header of {name} names {local_name}")
        if not flags & _DATA_DESCRIPTOR:
            sizes = (local_size, local_compressed)
            if 0xFFFFFFFF in sizes:
                sizes = _zip64_sizes(tail[name_length:], sizes)
            if sizes != (size, size) or local_crc != crc:
                raise InvalidStudyZipError(
                    f"{self.path}: local and central headers of {name} differ"
                )
        offset = header_offset + _LOCAL_HEADER.size + name_length + extra_length
        if offset + size > self._end:
            raise InvalidStudyZipError(f"{self.path}: {name} lies outside the file's data")
        return ZipEntry(name, offset, size, crc)

    def _pread(self, offset: int, length: int) -> bytes:
        chunks = []
        while length > 0:
            chunk = os.pread(self.fileno(), min(length, _CHUNK), offset)
            if not chunk:
                raise InvalidStudyZipError(f"{self.path}: ends before offset {offset + length}")
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    def iter_bytes(
        self, name: str, start: int = 0, stop: int | None = None, chunk_size: int = _CHUNK
    ) -> Iterator[bytes]:
        """The bytes ``[start, stop)`` of an entry's data, in chunks."""
        entry = self.entry(name)
        stop = entry.length if stop is None else min(stop, entry.length)
        position = max(0, start)
        while position < stop:
            length = min(chunk_size, stop - position)
            yield self._pread(entry.offset + position, length)
            position += length

    def read_range(self, name: str, start: int, stop: int) -> bytes:
        return b"".join(self.iter_bytes(name, start, stop))

    def read(self, name: str) -> bytes:
        """The whole data of an entry, its CRC checked."""
        entry = self.entry(name)
        data = self._pread(entry.offset, entry.length)
        if zlib.crc32(data) != entry.crc32:
            raise InvalidStudyZipError(f"{self.path}: {name} fails its CRC check")
        return data

    def read_json_gz(self, name: str) -> Any:
        return orjson.loads(gunzip(self.read(name)))


def _zip64_sizes(extra: bytes, sizes: tuple[int, int]) -> tuple[int, int]:
    """The sizes of a local header whose 32-bit fields say "see ZIP64"."""
    position = 0
    while position + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, position)
        body = extra[position + 4 : position + 4 + length]
        if kind == _ZIP64_EXTRA:
            values = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
            size, compressed = sizes
            # The order is fixed: original size, then compressed size (4.5.3).
            if size == 0xFFFFFFFF and values:
                size = values.pop(0)
            if compressed == 0xFFFFFFFF and values:
                compressed = values.pop(0)
            return size, compressed
        position += 4 + length
    return sizes


def _options(comment: bytes, study: str) -> ArchiveOptions | None:
    """The packing archive's options from the comment; None when absent."""
    if not comment:
        return None
    try:
        document = orjson.loads(comment)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or document.get("format") != ZIP_FORMAT:
        return None
    if document.get("study") != study:
        raise InvalidStudyZipError(f"comment names study {document.get('study')}, not {study}")
    options = document.get("archive")
    return ArchiveOptions.from_json(options) if isinstance(options, dict) else None
