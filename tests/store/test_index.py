from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

import orjson
import pydicom
import pytest
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions, tags
from dicomweb_archive.errors import DamagedDatabaseError
from dicomweb_archive.store import index as index_module
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import INDEX_PATH, Level, QidoIndex, Query
from dicomweb_archive.store.indextables import SCHEMA_VERSION
from dicomweb_archive.store.packing import pack_study
from tests.conftest import write_instance


def _archive(tmp_path: Path) -> tuple[Path, list[str]]:
    studies = [generate_uid() for _ in range(3)]
    names = ["Doe^Jane", "Roe^Rick", "doe^john"]
    for n, (study, name) in enumerate(zip(studies, names, strict=True)):
        series = generate_uid()
        for i in range(n + 1):
            write_instance(
                tmp_path / "in",
                study=study,
                series=series,
                patient_name=name,
                patient_id=f"P{n}",
                instance_number=i + 1,
            )
    archive = tmp_path / "archive"
    Converter(archive, ConvertOptions(workers=1)).convert([str(tmp_path / "in")])
    return archive, studies


def _uids(rows: list[dict], key: str = "0020000D") -> list[str]:
    return [r[key]["Value"][0] for r in rows]


def test_rebuild_and_search(tmp_path: Path) -> None:
    archive, studies = _archive(tmp_path)
    with QidoIndex(open_archive(archive)) as index:
        assert index.rebuild() == 3
        everything = index.search(Level.STUDY, Query())
        assert sorted(_uids(everything)) == sorted(studies)
        does = index.search(Level.STUDY, Query(match=[("00100010", "PN", "doe*")]))
        assert sorted(_uids(does)) == sorted([studies[0], studies[2]])
        assert index.search(Level.STUDY, Query(match=[("00100020", "LO", "P1")]))[0]["0020000D"][
            "Value"
        ] == [studies[1]]
        # Paging is stable and gap-free.
        pages = [index.search(Level.STUDY, Query(limit=1, offset=i)) for i in range(4)]
        assert [_uids(p) for p in pages[:3]] == [[u] for u in _uids(everything)]
        assert pages[3] == []
        # includefield: an attribute outside the default row, from the study.
        [row] = index.search(
            Level.STUDY, Query(match=[("0020000D", "UI", studies[0])], include={"00280010"})
        )
        assert row["00280010"]["Value"] == [16]
        [row] = index.search(Level.STUDY, Query(match=[("0020000D", "UI", studies[0])]))
        assert "00280010" not in row
        series = index.search(Level.SERIES, Query(study=studies[2]))
        assert len(series) == 1 and series[0]["00201209"]["Value"] == [3]
        instances = index.search(Level.INSTANCE, Query(study=studies[2]))
        assert [r["00200013"]["Value"][0] for r in instances] == [1, 2, 3]
        # Cross-study series search carries study attributes when asked for all.
        [row] = index.search(Level.SERIES, Query(match=[("00100020", "LO", "P0")], include=None))
        assert row["00100010"]["Value"] == [{"Alphabetic": "Doe^Jane"}]


def test_index_is_disposable(tmp_path: Path) -> None:
    archive, studies = _archive(tmp_path)
    index_path = archive / INDEX_PATH
    with QidoIndex(open_archive(archive)) as index:
        index.rebuild()
    index_path.unlink()
    with QidoIndex(open_archive(archive)) as index:
        assert index.search(Level.STUDY, Query()) == []
        index.update_studies(studies)
        assert len(index.search(Level.STUDY, Query())) == 3


def test_a_study_is_found_by_the_values_its_instances_hold(tmp_path: Path) -> None:
    # The first instance has no PatientID and another StudyDate than the rest.
    study, series = generate_uid(), generate_uid()
    for number, patient_id in ((1, ""), (2, "1234"), (3, "1234")):
        path = write_instance(
            tmp_path / "in",
            study=study,
            series=series,
            patient_id=patient_id,
            instance_number=number,
        )
        if number == 1:
            ds = pydicom.dcmread(path)
            ds.StudyDate = "20230101"
            ds.save_as(path)
    archive = tmp_path / "archive"
    result = Converter(archive, ConvertOptions(workers=1)).convert([str(tmp_path / "in")])
    assert {c.keyword for c in result.conflicts} == {"PatientID", "StudyDate"}
    with QidoIndex(open_archive(archive)) as index:
        index.rebuild()
        for key, vr, value in (("00100020", "LO", "1234"), ("00080020", "DA", "20240102")):
            rows = index.search(Level.STUDY, Query(match=[(key, vr, value)]))
            assert _uids(rows) == [study], key
            assert rows[0][key]["Value"] == [value]


def test_an_index_of_another_schema_version_or_unfinished_is_rebuilt(tmp_path: Path) -> None:
    archive, studies = _archive(tmp_path)
    catalog = Catalog(open_archive(archive))
    catalog.open_index().close()
    db = sqlite3.connect(archive / INDEX_PATH)
    # What the first version left: no columns, no "complete" mark.
    db.execute("DROP TABLE studies")
    db.execute("CREATE TABLE studies (study TEXT PRIMARY KEY, sort_key, row, attributes)")
    db.execute("DELETE FROM meta")
    db.execute("INSERT INTO meta VALUES ('schema', '1')")
    db.commit()
    with catalog.open_index() as index:
        assert index.complete
        rows = index.search(Level.STUDY, Query(match=[("00100020", "LO", "P1")]))
        assert _uids(rows) == [studies[1]]
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    assert sorted(r[0] for r in db.execute("SELECT patient_id FROM studies")) == ["P0", "P1", "P2"]
    # A first build killed midway leaves "complete" unset: the next opening rebuilds.
    db.execute("DELETE FROM studies WHERE patient_id = 'P2'")
    db.execute("UPDATE meta SET value = '0' WHERE key = 'complete'")
    db.commit()
    with catalog.open_index() as index:
        assert len(index.search(Level.STUDY, Query())) == 3
    db.close()


def test_columns_narrow_a_study_search_to_what_it_matched_before(tmp_path: Path) -> None:
    archive, studies = _archive(tmp_path)
    with QidoIndex(open_archive(archive)) as index:
        index.rebuild()
        [date] = {r["00080020"]["Value"][0] for r in index.search(Level.STUDY, Query())}
        for key, vr, value, found in (
            ("00080020", "DA", f"{date}-", studies),
            ("00080020", "DA", f"-{date}", studies),
            ("00080020", "DA", "19000101-19000102", []),
            ("00100020", "LO", "P*", studies),
            ("00100020", "LO", "P2", studies[2:]),
            ("00080061", "CS", "CT", studies),
            ("00080061", "CS", "MR", []),
        ):
            rows = index.search(Level.STUDY, Query(match=[(key, vr, value)]))
            assert sorted(_uids(rows)) == sorted(found), (key, value)


def test_the_index_of_another_schema_is_left_alone_and_ours_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive, studies = _archive(tmp_path)
    catalog = Catalog(open_archive(archive))
    catalog.open_index().close()
    assert f".dwa/index-{SCHEMA_VERSION}.sqlite" == INDEX_PATH
    # An older build (schemas before 4 shared index.sqlite) or a newer one used the
    # archive since: its file is there, ours may lack what it wrote.
    for name in ("index.sqlite", f"index-{SCHEMA_VERSION + 1}.sqlite"):
        with contextlib.closing(sqlite3.connect(archive / ".dwa" / name)) as other:
            other.execute("CREATE TABLE studies (study TEXT PRIMARY KEY, sort_key, row)")
            other.commit()
        with sqlite3.connect(archive / INDEX_PATH) as ours:
            ours.execute("DELETE FROM studies WHERE patient_id = 'P2'")
        with caplog.at_level(logging.WARNING), catalog.open_index() as index:
            assert len(index.search(Level.STUDY, Query())) == 3
        assert f"an index of another schema is there ({name})" in caplog.text
        assert not (archive / ".dwa" / name).exists()
        caplog.clear()
    # Without another file, a complete index is used as it is.
    with sqlite3.connect(archive / INDEX_PATH) as ours:
        ours.execute("DELETE FROM studies WHERE patient_id = 'P2'")
    with catalog.open_index() as index:
        assert len(index.search(Level.STUDY, Query())) == 2
    assert caplog.text == ""


def test_the_text_index_follows_every_write(tmp_path: Path) -> None:
    archive, studies = _archive(tmp_path)
    search = Query(match=[("00100010", "PN", "*OE^J*")])  # a substring: the text index
    with Catalog(open_archive(archive)).open_index() as index:
        assert index.text_search

        def check(expected: list[str]) -> None:
            db = sqlite3.connect(index.path)
            db.execute("INSERT INTO study_text (study_text) VALUES ('integrity-check')")
            db.close()
            assert sorted(_uids(index.search(Level.STUDY, search))) == sorted(expected)

        check([studies[0], studies[2]])
        index.update_studies(studies)  # rows deleted and inserted again
        check([studies[0], studies[2]])
        index.replace_studies({studies[0]: None})  # a study gone
        check([studies[2]])
        with index.transaction():  # a row changed in place
            index._db.execute(
                "UPDATE studies SET patient_name = 'roe^kim' WHERE study = ?", (studies[2],)
            )
        check([])
        assert index.rebuild() == 3
        check([studies[0], studies[2]])


def test_attributes_often_included_come_without_the_studys_whole_attributes(
    tmp_path: Path,
) -> None:
    archive, studies = _archive(tmp_path)
    often = {tags.Modality, tags.StudyDescription, tags.ReferringPhysicianName}
    with Catalog(open_archive(archive)).open_index() as index:
        for match in ([], [(tags.PatientName, "PN", "d*"), (tags.Modality, "CS", "CT")]):
            every = index.search(Level.STUDY, Query(match=match, include=None))
            asked = index.search(Level.STUDY, Query(match=match, include=often))
            assert [row[tags.Modality]["Value"] for row in asked] == [["CT"]] * len(every)
            # As many as the whole attributes give: what a study lacks stays out.
            assert asked == [
                {tag: value for tag, value in row.items() if tag in often or tag in plain}
                for row, plain in zip(
                    every, index.search(Level.STUDY, Query(match=match)), strict=True
                )
            ]
            db = sqlite3.connect(index.path)
            assert {tags.Modality} <= set(
                orjson.loads(db.execute("SELECT extra FROM studies").fetchone()[0])
            )
            db.close()


def test_a_rebuild_reads_folders_and_zips_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, studies = _archive(tmp_path)
    searches = [Query(include=None), Query(match=[("00100010", "PN", "*o*")])]
    with QidoIndex(open_archive(archive)) as index:
        index.rebuild()
        expected = [index.search(level, query) for level in Level for query in searches]
    opened = open_archive(archive)
    listed = opened.studies()
    assert not any(listed.values())
    pack_study(opened, studies[1], remove=True)
    pack_study(opened, studies[2], remove=False)
    # Packed after the archive was listed: read from its ZIP all the same.
    monkeypatch.setattr(opened, "studies", lambda: listed)
    monkeypatch.setattr(index_module, "BATCH_ROWS", 2)  # a batch every study or so
    with QidoIndex(opened) as index:
        assert index.rebuild() == 3
        assert [index.search(level, query) for level in Level for query in searches] == expected


def test_commits_are_not_synced_but_the_log_is_at_checkpoints(tmp_path: Path) -> None:
    """WAL with synchronous NORMAL on every connection (the one to close last
    checkpoints): a commit waited for the file system's journal otherwise."""
    archive, _ = _archive(tmp_path)
    with QidoIndex(open_archive(archive)) as index:
        index.rebuild()
        assert index._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert index._db.execute("PRAGMA synchronous").fetchone() == (1,)
        with index._snapshot() as reader:
            assert reader.execute("PRAGMA synchronous").fetchone() == (1,)


def _damage(path: Path, start: int) -> None:
    """Overwrite ``path`` from ``start`` on, in place, as lost blocks leave it."""
    size = path.stat().st_size
    with open(path, "r+b") as file:
        file.seek(start)
        file.write(b"\xa5" * (size - start))


def test_an_index_that_is_no_database_is_made_anew_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive, studies = _archive(tmp_path)
    (archive / INDEX_PATH).write_bytes(b"left so by a power failure" * 1000)
    with Catalog(open_archive(archive)).open_index() as index:
        assert sorted(_uids(index.search(Level.STUDY, Query()))) == sorted(studies)
    assert "damaged (file is not a database): dropped, made anew" in caplog.text


def test_an_index_damaged_inside_is_dropped_rebuilt_and_the_search_made_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive, studies = _archive(tmp_path)
    opened = open_archive(archive)
    with QidoIndex(opened) as index:
        index.rebuild()
        expected = index.search(Level.INSTANCE, Query(include=None))
    local = archive / INDEX_PATH
    pages = local.stat().st_size // 4096
    assert pages > 8
    _damage(local, 4096 * (pages // 2))  # the second half of the pages
    with QidoIndex(opened) as index:
        assert index.search(Level.INSTANCE, Query(include=None)) == expected
        assert index.complete
    assert f"{local}: damaged (database disk image is malformed): dropped, made anew" in (
        caplog.text
    )
    with sqlite3.connect(local) as db:  # rebuilt, whole
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM studies").fetchone() == (len(studies),)


def test_damage_found_in_use_is_rebuilt_and_other_users_follow_the_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, studies = _archive(tmp_path)
    catalog = Catalog(open_archive(archive))
    serving, other = catalog.open_index(), catalog.open_index()
    expected = serving.search(Level.STUDY, Query())
    assert other.search(Level.STUDY, Query()) == expected
    found = [1]
    page = index_module.study_page

    def damaged(*args: object) -> list[int]:
        if found[0]:
            found[0] -= 1
            exc = sqlite3.DatabaseError("database disk image is malformed")
            exc.sqlite_errorcode = sqlite3.SQLITE_CORRUPT  # type: ignore[attr-defined]
            raise exc
        return page(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(index_module, "study_page", damaged)
    before = (archive / INDEX_PATH).stat()
    assert serving.search(Level.STUDY, Query()) == expected  # dropped, rebuilt, searched again
    after = (archive / INDEX_PATH).stat()
    assert (after.st_ino, after.st_mtime_ns) != (before.st_ino, before.st_mtime_ns)
    # A new study, indexed through the new file: the other user reads it there.
    new = generate_uid()
    write_instance(tmp_path / "more", study=new, series=generate_uid(), patient_name="New^One")
    Converter(archive, ConvertOptions(workers=1)).convert([str(tmp_path / "more")])
    assert sorted(_uids(other.search(Level.STUDY, Query()))) == sorted([*studies, new])
    serving.close()
    other.close()


def test_damage_met_again_after_the_rebuild_is_one_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, _ = _archive(tmp_path)
    index = Catalog(open_archive(archive)).open_index()

    def damaged(*_: object) -> None:
        exc = sqlite3.DatabaseError("database disk image is malformed")
        exc.sqlite_errorcode = sqlite3.SQLITE_CORRUPT  # type: ignore[attr-defined]
        raise exc

    monkeypatch.setattr(index_module, "study_page", damaged)
    with pytest.raises(DamagedDatabaseError, match=f"^{archive / INDEX_PATH}: damaged"):
        index.search(Level.STUDY, Query())
    monkeypatch.undo()
    assert len(index.search(Level.STUDY, Query())) == 3
    index.close()
