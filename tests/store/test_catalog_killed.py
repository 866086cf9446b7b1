"""A flush killed (SIGKILL) at any point: the stale markers left say which studies
are behind, and the next flush ends with the bytes and index rows of a clean run."""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from dicomweb_archive import Converter, ConvertOptions
from dicomweb_archive.model import paths
from dicomweb_archive.store import listing
from dicomweb_archive.store.archive import Archive, open_archive
from dicomweb_archive.store.catalog import Catalog
from dicomweb_archive.store.index import INDEX_PATH, Level, QidoIndex, Query
from dicomweb_archive.store.listing import LISTING_PATH
from dicomweb_archive.types import JSONDataset
from tests.conftest import snapshot, write_instance
from tests.store.test_catalog import _derived

_FLUSH = """
import sys
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
catalog = Catalog(open_archive(sys.argv[1]))
print("ready", flush=True)
catalog.flush()
"""


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive converted in one clean run, with its index."""
    folder = tmp_path_factory.mktemp("clean")
    for n in range(12):
        study, series = generate_uid(), generate_uid()
        for number in range(1, 5):
            write_instance(
                folder / "in",
                study=study,
                series=series,
                instance_number=number,
                patient_id=f"P{n}",
            )
    root = folder / "archive"
    assert Converter(root, ConvertOptions(workers=1)).convert([str(folder / "in")]).ok
    Catalog(open_archive(root)).open_index().close()
    return root


def _behind(clean: Path, root: Path) -> Archive:
    """The clean archive's instances, every derived document and index row gone,
    every study marked stale: as STOW-RS leaves an archive before its flush."""
    shutil.copytree(clean, root)
    archive = open_archive(root)
    for study in archive.study_uids():
        for name in _derived(archive, study):
            archive.store.remove(name)
    archive.store.remove(paths.STUDIES_INDEX)
    with sqlite3.connect(root / INDEX_PATH) as db:
        for table in ("studies", "series", "instances"):
            db.execute(f"DELETE FROM {table}")
    Catalog(archive).defer(archive.study_uids())
    return archive


def _rows(root: Path, study: str) -> list[list[JSONDataset]]:
    with QidoIndex(open_archive(root)) as index:
        return [
            index.search(Level.STUDY, Query(match=[("0020000D", "UI", study)])),
            index.search(Level.SERIES, Query(study=study)),
            index.search(Level.INSTANCE, Query(study=study)),
        ]


def _flush(root: Path, kill_after: float | None = None) -> float:
    """Flush in a process of its own, SIGKILLed ``kill_after`` seconds into its
    flush (None: not killed); returns the seconds it ran."""
    child = subprocess.Popen(
        [sys.executable, "-c", _FLUSH, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    started = time.monotonic()
    if kill_after is None:
        assert child.wait() == 0
    else:
        time.sleep(kill_after)
        child.kill()
        child.wait()
    return time.monotonic() - started


def _assert_current_unless_stale(archive: Archive, root: Path, clean: Path) -> tuple[int, int]:
    """What no marker calls stale is current, documents and index rows; returns
    how many studies are stale, and how many of them have documents already."""
    clean_archive = open_archive(clean)
    stale = set(Catalog(archive).journal.stale())
    for study in set(clean_archive.study_uids()) - stale:
        assert _derived(archive, study) == _derived(clean_archive, study)
        assert _rows(root, study) == _rows(clean, study)
    written = [study for study in stale if archive.exists(paths.study_row(study))]
    return len(stale), len(written)


def test_a_killed_flush_leaves_markers_that_the_next_one_settles(
    clean: Path, tmp_path: Path
) -> None:
    chance = random.Random(12)
    _behind(clean, tmp_path / "timed")
    full = _flush(tmp_path / "timed")
    left = []
    for round_ in range(4):
        root = tmp_path / f"archive{round_}"
        archive = _behind(clean, root)
        # Once or twice, at random points of the flush.
        for _ in range(1 + round_ % 2):
            _flush(root, kill_after=chance.uniform(0.1, 0.9) * full)
            left.append(_assert_current_unless_stale(archive, root, clean))
        Catalog(archive).flush()
        assert Catalog(archive).journal.stale() == Catalog(archive).journal.unlisted() == []
        served = {name: data for name, (_, data) in snapshot(root).items()}
        assert served == {name: data for name, (_, data) in snapshot(clean).items()}
        for study in open_archive(clean).study_uids():
            assert _rows(root, study) == _rows(clean, study)
    # Some kill met a flush midway: documents written, markers not cleared yet.
    assert any(stale and written for stale, written in left), left


_DYING_FLUSH = """
import os, signal, sys
from dicomweb_archive.store import listing
from dicomweb_archive.store.archive import open_archive
from dicomweb_archive.store.catalog import Catalog
root, page_size, point, calls = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
listing.PAGE_SIZE = page_size
made = []

def dying(method):
    def run(*args, **kwargs):
        made.append(None)
        if len(made) > calls:
            os.kill(os.getpid(), signal.SIGKILL)
        return method(*args, **kwargs)
    return run

catalog = Catalog(open_archive(root))
if point == "record":
    listing.StudyList._record = dying(listing.StudyList._record)
elif point == "write":
    listing._list = dying(listing._list)
else:
    catalog.journal.clear_unlisted = dying(catalog.journal.clear_unlisted)
catalog.flush()
"""
_PAGE = 5


@pytest.fixture(scope="module")
def paged(clean: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clean archive listed in pages of 5 studies (12: three pages)."""
    root = tmp_path_factory.mktemp("paged") / "archive"
    shutil.copytree(clean, root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(listing, "PAGE_SIZE", _PAGE)
        assert Catalog(open_archive(root)).rebuild_study_list() == 12
    assert (root / paths.study_list_page(2)).exists()
    return root


@pytest.mark.parametrize(
    ("point", "calls"),
    # Mid-transaction; after it, before each list file (3 pages, then
    # index.json.gz); after them, before the markers are cleared.
    [("record", 5), ("write", 0), ("write", 1), ("write", 3), ("clear", 0)],
)
def test_a_flush_killed_while_listing_ends_with_the_clean_pages(
    paged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, calls: int
) -> None:
    """Every study new to the list (its slot given in the killed flush), its
    pages and index.json.gz gone: the next flush writes the clean run's bytes."""
    root = tmp_path / "archive"
    archive = _behind(paged, root)
    shutil.rmtree(root / paths.STUDY_LIST_PAGES)
    with sqlite3.connect(root / LISTING_PATH) as db:
        db.execute("DELETE FROM listed")
    child = subprocess.run(
        [sys.executable, "-c", _DYING_FLUSH, str(root), str(_PAGE), point, str(calls)],
        check=False,
    )
    assert child.returncode == -9
    monkeypatch.setattr(listing, "PAGE_SIZE", _PAGE)
    Catalog(archive).flush()
    assert Catalog(archive).journal.unlisted() == []
    served = {name: data for name, (_, data) in snapshot(root).items()}
    assert served == {name: data for name, (_, data) in snapshot(paged).items()}


def test_a_delisting_killed_before_its_page_is_written_ends_clean(
    paged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delisted study is gone from the record once the killed flush
    committed; the page it left is still written by the next flush."""
    monkeypatch.setattr(listing, "PAGE_SIZE", _PAGE)
    roots = [tmp_path / "killed", tmp_path / "clean"]
    study = open_archive(paged).read_json_gz(paths.study_list_page(0))[1]["0020000D"]["Value"][0]
    for root in roots:
        shutil.copytree(paged, root)
        archive = open_archive(root)
        archive.store.remove_tree(paths.study_dir(study))
        Catalog(archive).journal.mark_unlisted(study)
    child = subprocess.run(
        [sys.executable, "-c", _DYING_FLUSH, str(roots[0]), str(_PAGE), "write", "0"],
        check=False,
    )
    assert child.returncode == -9
    for root in roots:
        Catalog(open_archive(root)).flush()
    killed, clean = ({n: data for n, (_, data) in snapshot(r).items()} for r in roots)
    assert killed == clean
    assert killed[paths.study_list_page(0)] != snapshot(paged)[paths.study_list_page(0)][1]
