"""The web page (`GET /api/app`) in a real browser (Debian's Chromium, driven by Selenium) against
the devhost: paste a link, watch the progress bar, download the file; a refused link; cancel;
a playlist's rows. Everything is done through the page, with the keyboard where a user would.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from devhost import media
from devhost.media import MediaServer, write_feed
from tests.e2e.harness import Job, LocalStack, http

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (make test / .ci/run install them with apt-get)",
)
WATCHABLE_BYTES_PER_SECOND = 384 * 1024
"""About 10 s for big.mp4: several of the page's 2 s polls land mid-download, even on a busy machine."""
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


class Page:
    """The web page in one browser, with the questions a user would ask of it."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, downloads: Path):
        self.driver = driver
        self.base_url = base_url
        self.downloads = downloads

    def open(self) -> None:
        self.driver.get(f"{self.base_url}/api/app")
        self.wait(lambda: self.driver.find_element(By.ID, "jobs").get_attribute("aria-busy") == "false", 30,
                  "the recent jobs to load")

    def wait(self, check: Callable[[], Any], timeout: float, what: str = "condition") -> Any:
        end = time.monotonic() + timeout
        while True:
            try:
                result = check()
            except (StaleElementReferenceException, NoSuchElementException):  # the page is (re)loading
                result = None
            if result:
                return result
            if time.monotonic() > end:
                raise AssertionError(f"{what} not met after {timeout}s")
            time.sleep(0.1)

    def submit(self, url: str, *, max_height: str | None = None, playlist: bool = False) -> None:
        field = self.driver.find_element(By.ID, "url")
        field.clear()
        if max_height:
            Select(self.driver.find_element(By.ID, "max-height")).select_by_value(max_height)
        if playlist:
            self.driver.find_element(By.ID, "playlist").click()
        field.send_keys(url, Keys.ENTER)  # the keyboard submits the form

    def job_ids(self) -> list[str]:
        return [li.get_attribute("data-id") for li in self.driver.find_elements(By.CSS_SELECTOR, "#jobs > li.job")]

    def new_job(self, before: list[str], timeout: float = 30) -> WebElement:
        job_id = self.wait(lambda: next((i for i in self.job_ids() if i not in before), None), timeout, "a new job")
        card = self.card(job_id)
        assert self.job_ids()[0] == job_id  # on top
        return card

    def card(self, job_id: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, f'#jobs > li.job[data-id="{job_id}"]')

    @staticmethod
    def text(card: WebElement, selector: str) -> str:
        return card.find_element(By.CSS_SELECTOR, selector).text

    def progress(self, card: WebElement) -> float | None:
        return self.driver.execute_script(
            "const p = arguments[0].querySelector('.job-progress');"
            "return p.hasAttribute('value') && !p.hidden ? p.value : null;", card)

    def downloaded(self, timeout: float = 60) -> Path:
        def finished() -> Path | None:
            files = [p for p in self.downloads.iterdir() if not p.name.endswith(".crdownload")]
            partial = [p for p in self.downloads.iterdir() if p.name.endswith(".crdownload")]
            return files[0] if files and not partial else None
        return self.wait(finished, timeout, "the downloaded file")


@pytest.fixture(scope="module")
def watchable_media(clips: Path) -> Iterator[MediaServer]:
    with media.serve_directory(clips, WATCHABLE_BYTES_PER_SECOND) as server:
        yield server


@pytest.fixture
def page(local: LocalStack, tmp_path: Path) -> Iterator[Page]:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=820,1000"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")),
                              options=options)
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        p = Page(driver, local.devhost.base_url, downloads)
        p.open()
        yield p
    finally:
        driver.quit()


def status_of(local: LocalStack, job_id: str) -> dict:
    code, body = http("GET", f"{local.devhost.base_url}/runtime/webhooks/durabletask/instances/{job_id}")
    assert code in (200, 202), (code, body)
    return body


def test_the_page_is_served_with_a_strict_content_security_policy(local: LocalStack):
    import urllib.request

    with urllib.request.urlopen(f"{local.devhost.base_url}/api/app", timeout=30) as response:  # noqa: S310
        csp = response.headers["Content-Security-Policy"]
        assert response.headers["Content-Type"].startswith("text/html")
        html = response.read().decode()

    assert "default-src 'none'" in csp and "'unsafe-inline'" not in csp and "connect-src 'self'" in csp
    assert "script-src 'sha256-" in csp and html.count("<script") == 1
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html), "an inline event handler (the policy would block it)"


def test_a_pasted_link_shows_progress_then_a_download_with_the_right_bytes(
    local: LocalStack, watchable_media: MediaServer, page: Page, tmp_path: Path
):
    before = page.job_ids()
    page.submit(watchable_media.url("big.mp4"), max_height="720")
    card = page.new_job(before)
    job_id = card.get_attribute("data-id")

    seen: list[float] = []

    def watch() -> bool:
        value = page.progress(card)
        if value is not None and (not seen or seen[-1] != value):
            seen.append(value)
        return (card.find_element(By.CSS_SELECTOR, ".job-download").is_displayed()
                or Page.text(card, ".job-state") in ("failed", "cancelled", "terminated"))
    page.wait(watch, 120, "the finished job")

    assert Page.text(card, ".job-state") == "done"
    assert any(0 < v < 100 for v in seen), seen  # the bar moved while downloading
    assert page.progress(card) == 100
    output = status_of(local, job_id)["output"]
    assert Page.text(card, ".job-title") == output["media"]["title"]
    assert re.fullmatch(r"\d+\.\d MiB · 1280×720 · 00:05", Page.text(card, ".job-size"))
    card.screenshot(str(tmp_path / "finished-job.png"))
    page.driver.save_screenshot(str(tmp_path / "page.png"))

    download = card.find_element(By.CSS_SELECTOR, ".job-download")
    assert download.get_attribute("href") == output["shareLink"]["url"]
    download.send_keys(Keys.ENTER)  # a keyboard user follows the link
    saved = page.downloaded()

    data = saved.read_bytes()
    assert hashlib.sha256(data).hexdigest() == output["blob"]["sha256"] and len(data) == output["blob"]["sizeBytes"]


@pytest.mark.parametrize(("url", "words"), [
    ("https://vimeo.com/76979871", "not allowed by this service"),
    ("ftp://127.0.0.1/clip.mp4", "Only http:// and https:// links"),
    ("not a link", "complete web address"),
])
def test_a_refused_link_is_explained_next_to_the_input_and_starts_nothing(
    local: LocalStack, page: Page, url: str, words: str
):
    code, listed = http("GET", f"{local.devhost.base_url}/api/downloads?top=100")
    assert code == 200
    before = page.job_ids()

    page.submit(url)
    message = page.wait(lambda: (m := page.driver.find_element(By.ID, "url-error")).is_displayed() and m, 30,
                        "the error message")

    assert words in message.text
    assert page.driver.find_element(By.ID, "url").get_attribute("aria-invalid") == "true"
    assert page.driver.switch_to.active_element.get_attribute("id") == "url"  # focus back on the input
    assert page.job_ids() == before
    _, after = http("GET", f"{local.devhost.base_url}/api/downloads?top=100")
    assert [j["id"] for j in after["jobs"]] == [j["id"] for j in listed["jobs"]]


def test_a_running_job_is_cancelled_from_the_page(local: LocalStack, slow_media: MediaServer, page: Page):
    before = page.job_ids()
    page.submit(slow_media.url("sample.mp4"))
    card = page.new_job(before)
    job_id = card.get_attribute("data-id")
    page.wait(lambda: Page.text(card, ".job-state") == "downloading", 60, "the download to start")

    cancel = card.find_element(By.CSS_SELECTOR, ".job-cancel")
    cancel.send_keys(Keys.ENTER)
    page.wait(lambda: Page.text(card, ".job-state") == "cancelled", 60, "the cancelled state")

    assert "(cancelled)" in Page.text(card, ".job-error")
    assert not card.find_element(By.CSS_SELECTOR, ".job-cancel").is_displayed()
    status = status_of(local, job_id)
    assert status["runtimeStatus"] == "Failed" and status["customStatus"]["error"]["code"] == "cancelled"


def test_a_playlist_shows_a_row_per_item_each_with_its_download(
    local: LocalStack, fast_media: MediaServer, clips: Path, page: Page
):
    feed = f"feed-{uuid.uuid4().hex[:8]}.rss"
    entries = [(f"Clip {s}s", fast_media.url(f"clip-{s}s.mp4")) for s in (2, 3, 4)]
    write_feed(clips / feed, "Loopback channel", entries)
    before = page.job_ids()

    page.submit(fast_media.url(feed), playlist=True)
    card = page.new_job(before)
    page.wait(lambda: Page.text(card, ".job-state") in ("done", "partly done", "failed"), 120, "the playlist")
    rows = page.wait(lambda: len(r := card.find_elements(By.CSS_SELECTOR, "ol.items > li.item")) == 3 and r, 30,
                     "three item rows")

    assert Page.text(card, ".job-state") == "done"
    assert Page.text(card, ".job-title") == "Loopback channel"
    assert [Page.text(r, ".item-title") for r in rows] == [title for title, _ in entries]
    assert [Page.text(r, ".item-state") for r in rows] == ["succeeded"] * 3
    assert all(r.find_element(By.CSS_SELECTOR, ".item-download").is_displayed() for r in rows)


@pytest.fixture
def listed_job(local: LocalStack, fast_media: media.MediaServer) -> Job:
    """A job submitted through the API (not the page) just before the page opens, so it is among
    the recent jobs however many the session made before; it fails fast (the file is missing)."""
    return local.submit(fast_media.url(f"missing-{uuid.uuid4().hex}.mp4"))


def test_recent_jobs_are_listed_when_the_page_opens(local: LocalStack, listed_job: Job, page: Page):
    card = page.wait(lambda: listed_job.id in page.job_ids() and page.card(listed_job.id), 30, "the listed job")

    def label_matches_status() -> bool:
        status = status_of(local, listed_job.id)
        custom = status.get("customStatus") or {}
        expected = "failed" if status["runtimeStatus"] == "Failed" else custom.get("phase", "pending")
        return Page.text(card, ".job-state") == expected
    page.wait(label_matches_status, 30, "the job's state on its card")

    plan = status_of(local, listed_job.id)["input"]
    plan = json.loads(plan) if isinstance(plan, str) else plan  # the host may give the input as JSON text
    assert Page.text(card, ".job-url") == plan["request"]["url"]


def test_the_status_filter_shows_only_jobs_in_that_state(local: LocalStack, listed_job: Job, page: Page):
    page.wait(lambda: status_of(local, listed_job.id)["runtimeStatus"] == "Failed", 30, "the listed job to fail")
    choose = Select(page.driver.find_element(By.ID, "status-filter"))

    choose.select_by_value("failed")
    page.wait(lambda: listed_job.id in page.job_ids(), 30, "the failed job under 'failed'")
    failed = page.job_ids()
    choose.select_by_value("running")
    # The filter empties the list at once; then either cards or "No running jobs." come back.
    page.wait(lambda: page.driver.find_element(By.ID, "list-message").text or page.job_ids(), 30, "the running list")

    assert listed_job.id not in page.job_ids()
    # "failed" is the group Failed, Terminated, Canceled (earlier tests of the session cancel jobs).
    assert all(status_of(local, i)["runtimeStatus"] in {"Failed", "Terminated", "Canceled"} for i in failed)
