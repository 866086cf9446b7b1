"""The study browser at ``dwa serve``'s ``/`` and the viewer it opens, in headless Chromium.

One ``dwa serve --viewer`` over an archive like the demo's (the CT study of the
other browser tests and two of pydicom's files): the page lists the studies,
a search narrows the list, a study's series show their thumbnails, a study
downloads as a ZIP pydicom reads, pages follow the server's 299 warning,
everything is reachable by keyboard, and
Enter on a study opens it in OHIF at ``/viewer``, which draws the image with
no failed request.  Screenshots go to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect
from pydicom.data import get_testdata_file

from dicomweb_archive import Converter, ConvertOptions
from tests.browser.conftest import Study, run_dwa_serve
from tests.browser.pages import (
    PAGE_TIMEOUT_MS,
    RENDER_TIMEOUT,
    Traffic,
    assert_no_failed_requests,
    record,
    rendered,
    wait_rendered,
)

pytestmark = pytest.mark.browser

#: pydicom's files beside the CT study: (file, patient name as listed, modality).
OTHERS = [("MR_small.dcm", "CompressedSamples, MR1", "MR"), ("JPEG2000.dcm", "", "NM")]
#: Tab presses allowed to reach the first study row from the top of the page.
TABS_TO_FIRST_ROW = 20


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory, study: Study) -> Path:
    archive = tmp_path_factory.mktemp("study-browser") / "archive"
    shutil.copytree(study.archive, archive)
    files = [get_testdata_file(name) for name, _, _ in OTHERS]
    result = Converter(archive, ConvertOptions(workers=1)).convert(files)
    assert result.ok, result.to_json()
    return archive


@pytest.fixture(scope="module")
def origin(
    tmp_path_factory: pytest.TempPathFactory, archive: Path, ohif_dist: Path
) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("dwa-serve-viewer")
    with run_dwa_serve(archive, folder, ["--viewer", str(ohif_dist)]) as root:
        yield root.removesuffix("/dicomweb")


def open_browser(browser: BrowserContext, origin: str) -> Page:
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.goto(f"{origin}/", timeout=PAGE_TIMEOUT_MS)
    return page


def rows(page: Page) -> Any:
    return page.locator("#studies tbody tr.study")


def test_lists_searches_and_shows_thumbnails(
    browser: BrowserContext, origin: str, study: Study, artifacts: Path
) -> None:
    traffic = Traffic.watch(browser)
    page = open_browser(browser, origin)
    try:
        expect(rows(page)).to_have_count(1 + len(OTHERS))
        expect(page.get_by_role("status")).to_have_text("3 studies on this page.")
        # A part of the name, in another case: one study left.
        page.get_by_label("Patient name").fill("browser")
        page.get_by_label("Patient name").press("Enter")
        expect(rows(page)).to_have_count(1)
        row = rows(page).first
        expect(row).to_contain_text("Browser, Ohif")
        expect(row).to_contain_text(study.patient_id)
        expect(row).to_contain_text(str(study.slices))
        # Another search: by modality.
        page.get_by_label("Patient name").fill("")
        page.get_by_label("Modality").fill("mr")
        page.get_by_role("button", name="Search").click()
        expect(rows(page)).to_have_count(1)
        expect(rows(page).first).to_contain_text("MR")
        # By accession number (a part of it), then by a date range.
        page.get_by_label("Modality").fill("")
        page.get_by_label("Accession").fill("0000")
        page.get_by_label("Accession").press("Enter")
        expect(rows(page)).to_have_count(1)
        expect(rows(page).first).to_contain_text(study.patient_id)
        page.get_by_label("Accession").fill("")
        page.get_by_label("From").fill("2004-01-01")
        page.get_by_label("To").fill("2004-12-31")
        page.get_by_label("To").press("Enter")
        expect(rows(page)).to_have_count(len(OTHERS))
        page.get_by_role("button", name="Clear").click()
        expect(rows(page)).to_have_count(1 + len(OTHERS))
        # The CT study's series, with its thumbnail.
        ct = rows(page).filter(has_text=study.patient_id)
        ct.get_by_role("button", name="Series").click()
        expect(ct.get_by_role("button", name="Series")).to_have_attribute("aria-expanded", "true")
        thumbnail = page.locator(".series img").first
        expect(thumbnail).to_be_visible()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle()
        )
        expect(page.locator(".series li").first).to_contain_text(f"{study.slices} instances")
        # Stored sizes: 40 slices of 256x256 16-bit pixels, a few megabytes.
        expect(page.locator(".series li").first).to_contain_text(re.compile(r" [0-9.]+ MB"))
        expect(page.locator(".study-size")).to_contain_text(re.compile(r"^[0-9.]+ MB stored"))
        traffic.wait_until_quiet(page)
    finally:
        record(page, traffic, artifacts, "study-browser")
    thumbnails = traffic.answered(f"{origin}/dicomweb/studies/{study.study_uid}/", "/thumbnail")
    assert thumbnails and thumbnails[0].response is not None
    assert thumbnails[0].response.headers["content-type"] == "image/jpeg"
    searches = traffic.answered(f"{origin}/dicomweb/studies?")
    assert all("limit=25" in e.request.url for e in searches), [e.request.url for e in searches]
    assert_no_failed_requests(traffic)


def test_downloads_a_study_as_a_zip(
    browser: BrowserContext, origin: str, study: Study, tmp_path: Path
) -> None:
    page = open_browser(browser, origin)
    ct = rows(page).filter(has_text=study.patient_id)
    with page.expect_download() as info:
        ct.get_by_role("link", name="ZIP").click()
    download = info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.name == f"{study.study_uid}.zip"
    with zipfile.ZipFile(saved) as archive:
        members = [m for m in archive.namelist() if not m.endswith("/")]
        datasets = [pydicom.dcmread(io.BytesIO(archive.read(m))) for m in members]
    assert len(datasets) == study.slices
    assert {str(ds.StudyInstanceUID) for ds in datasets} == {study.study_uid}
    assert all(ds.pixel_array.shape == (ds.Rows, ds.Columns) for ds in datasets[:2])


def test_keyboard_reaches_a_study_and_enter_opens_it_in_the_viewer(
    browser: BrowserContext, origin: str, study: Study, artifacts: Path
) -> None:
    traffic = Traffic.watch(browser)
    page = open_browser(browser, origin)
    expect(rows(page)).to_have_count(1 + len(OTHERS))
    # Tab order: the search form first, then the studies.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "PatientName"
    for _ in range(TABS_TO_FIRST_ROW):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('tr.study')"):
            break
    else:
        pytest.fail(f"no study row after {TABS_TO_FIRST_ROW} presses of Tab")
    # Focus is visible: an outline of its own.
    outline = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()"
    )
    assert outline[0] != "none" and outline[1] >= 2, outline
    # Arrow keys move between rows; Enter on the CT study opens it.
    for _ in range(1 + len(OTHERS)):
        focused = page.evaluate("document.activeElement.dataset.study")
        if focused == study.study_uid:
            break
        page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.study") == study.study_uid
    page.screenshot(path=artifacts / "study-browser-keyboard.png")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{origin}/viewer?StudyInstanceUIDs={study.study_uid}")
    stats: list[dict[str, Any]] = []
    try:
        page.locator("canvas.cornerstone-canvas").first.wait_for(
            state="visible", timeout=PAGE_TIMEOUT_MS
        )
        stats = wait_rendered(page)
        traffic.wait_until_quiet(page)
        # The first study a fresh browser opens: no guided tour over it.
        expect(page.locator(".shepherd-element")).to_have_count(0)
    finally:
        record(page, traffic, artifacts, "study-browser-viewer")
        (artifacts / "study-browser-viewer-canvas.json").write_text(json.dumps(stats))
    assert rendered(stats), f"no viewport shows the image within {RENDER_TIMEOUT} s: {stats}"
    frames = traffic.answered(f"{origin}/dicomweb/studies/{study.study_uid}/", "/frames/")
    assert frames, "the viewer requested no frame"
    assert_no_failed_requests(traffic)


def test_pages_by_the_servers_299_warning(browser: BrowserContext, origin: str) -> None:
    """Next is offered only when the server says more rows match, and asks for that offset."""
    asked: list[str] = []

    def studies(route: Route) -> None:
        url = route.request.url
        asked.append(url)
        first = "offset=0" in url
        rows = [
            {
                "0020000D": {"vr": "UI", "Value": [f"1.2.3.{i}"]},
                "00100020": {"vr": "LO", "Value": [f"P{i}"]},
            }
            for i in (range(25) if first else range(25, 30))
        ]
        warning = (
            '299 dicomweb-archive "The number of results exceeded the limit of 25. '
            'Additional results can be requested with offset=25."'
        )
        route.fulfill(
            status=200,
            content_type="application/dicom+json",
            headers={"Warning": warning} if first else {},
            body=json.dumps(rows),
        )

    page = browser.pages[0] if browser.pages else browser.new_page()
    page.route(f"{origin}/dicomweb/studies?*", studies)
    page.goto(f"{origin}/", timeout=PAGE_TIMEOUT_MS)
    expect(rows(page)).to_have_count(25)
    assert "limit=25" in asked[0] and "offset=0" in asked[0]
    expect(page.get_by_role("button", name="Previous")).to_be_disabled()
    page.get_by_role("button", name="Next").click()
    expect(rows(page)).to_have_count(5)
    assert "offset=25" in asked[-1]
    expect(page.locator("#range")).to_have_text("Studies 26–30")
    expect(page.get_by_role("button", name="Next")).to_be_disabled()
    page.get_by_role("button", name="Previous").click()
    expect(rows(page)).to_have_count(25)
    assert "offset=0" in asked[-1]
