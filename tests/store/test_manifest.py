"""The manifest: created once, checked by every writer, read back into options."""

from __future__ import annotations

import orjson
import pytest

from dicomweb_archive.errors import ArchiveError, ArchiveOptionsMismatchError, NotAnArchiveError
from dicomweb_archive.model import paths
from dicomweb_archive.store.manifest import (
    FORMAT,
    ArchiveOptions,
    ensure,
    read_manifest,
    read_options,
    set_qido_fields,
)
from dicomweb_archive.store.memory import MemoryStore


def test_options_round_trip_through_json() -> None:
    options = ArchiveOptions(frames="raw", public_bulk_size=10, private_bulk_size=5)
    assert ArchiveOptions.from_json(options.to_json()) == options
    assert ArchiveOptions.from_json({}) == ArchiveOptions()
    with pytest.raises(ArchiveError, match="frame storage"):
        ArchiveOptions.from_json({"frames": "tiles"})


def test_ensure_creates_then_checks() -> None:
    store = MemoryStore("memory://a")
    options = ArchiveOptions(frames="raw")
    assert ensure(store, options) == options
    manifest = read_manifest(store)
    assert manifest == {"format": FORMAT, "formatVersion": 1, **options.to_json()}
    assert store.read(paths.MANIFEST).startswith(b"{\n  ")
    assert read_options(store) == options
    assert not store.write(paths.MANIFEST, store.read(paths.MANIFEST))
    ensure(store, options)
    with pytest.raises(ArchiveOptionsMismatchError, match="frames: archive has 'raw'"):
        ensure(store, ArchiveOptions())


def test_not_an_archive_is_one_error() -> None:
    store = MemoryStore("memory://empty")
    said = r"memory://empty: not a dicomweb-archive folder \(no manifest\)"
    with pytest.raises(NotAnArchiveError, match=said):
        read_options(store)
    store.write(paths.MANIFEST, orjson.dumps({"format": "other"}))
    with pytest.raises(NotAnArchiveError):
        read_options(store)
    with pytest.raises(NotAnArchiveError):
        ensure(store, ArchiveOptions())


def test_newer_and_unreadable_manifests_are_refused() -> None:
    store = MemoryStore()
    store.write(paths.MANIFEST, orjson.dumps({"format": FORMAT, "formatVersion": 99}))
    with pytest.raises(ArchiveError, match="newer"):
        read_options(store)
    store.write(paths.MANIFEST, b"{")
    with pytest.raises(ArchiveError, match="unreadable"):
        read_options(store)


def test_qido_fields_are_kept_only_once_set() -> None:
    store = MemoryStore("memory://q")
    ensure(store, ArchiveOptions())
    assert "qidoFields" not in orjson.loads(store.read(paths.MANIFEST))
    # An archive without fields takes writers that give none.
    ensure(store, ArchiveOptions())
    assert set_qido_fields(store, ("00180060", "00101030", "00180060"))
    assert read_options(store).qido_fields == ("00101030", "00180060")
    assert not set_qido_fields(store, ("00180060", "00101030"))
    # Writers without fields keep the archive's; other fields are refused.
    ensure(store, ArchiveOptions())
    with pytest.raises(ArchiveOptionsMismatchError, match="dwa index --qido-fields"):
        ensure(store, ArchiveOptions(qido_fields=("00180050",)))
    assert set_qido_fields(store, ())
    assert "qidoFields" not in orjson.loads(store.read(paths.MANIFEST))
    with pytest.raises(ArchiveError, match="8-hex"):
        ArchiveOptions.from_json({"qidoFields": ["KVP"]})
    with pytest.raises(NotAnArchiveError):
        set_qido_fields(MemoryStore("memory://none"), ("00180060",))
