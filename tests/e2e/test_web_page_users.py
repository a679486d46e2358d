"""The web page in entra mode (issue 21), in headless Chromium against a devhost playing App Service
Authentication: two people sign in one after the other in the same browser, each starts a download
through the page, and each sees only their own jobs. Everything is done through the pages (the
app's and the devhost's sign-in form), as a user would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.api.test_list_route import MEDIA, ListHost, list_host
from tests.e2e.test_web_page import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS, Page

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (make test / .ci/run install them with apt-get)",
)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ListHost]:
    with list_host(tmp_path_factory.mktemp("entra-page"), AUTH_MODE="entra") as h:
        yield h


class SignedPage(Page):
    def visible(self, element_id: str) -> bool:
        return self.driver.find_element(By.ID, element_id).is_displayed()

    def open_app(self) -> None:
        self.driver.get(f"{self.base_url}/api/app")
        self.wait(lambda: self.driver.find_element(By.ID, "jobs").get_attribute("aria-busy") == "false", 30,
                  "the page to settle")

    def sign_in(self, name: str) -> None:
        self.driver.find_element(By.ID, "sign-in").click()  # the app's link to the platform's sign-in
        field = self.wait(lambda: self.driver.find_element(By.ID, "user-name"), 30, "the sign-in form")
        field.send_keys(name, Keys.ENTER)
        self.wait(lambda: self.driver.current_url.endswith("/api/app"), 30, "back on the page")
        self.wait(lambda: self.visible("who") and self.driver.find_element(By.ID, "who-name").text == name, 30,
                  f"{name} shown as signed in")
        self.wait(lambda: self.driver.find_element(By.ID, "jobs").get_attribute("aria-busy") == "false", 30,
                  "the list to load")

    def sign_out(self) -> None:
        self.driver.find_element(By.ID, "sign-out").click()
        self.wait(lambda: self.visible("sign-in-panel"), 30, "the sign-in panel")

    def start(self, url: str) -> str:
        before = set(self.job_ids())
        self.submit(url)
        new = self.wait(lambda: set(self.job_ids()) - before, 30, "the new job on top")
        return new.pop()


@pytest.fixture
def browser(host: ListHost, tmp_path: Path) -> Iterator[SignedPage]:
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=820,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")),
                              options=options)
    try:
        yield SignedPage(driver, host.base, tmp_path)
    finally:
        driver.quit()


def test_two_people_sign_in_and_each_sees_only_their_own_jobs(browser: SignedPage):
    browser.open_app()
    assert browser.visible("sign-in-panel")
    assert not browser.visible("submit-form") and not browser.visible("jobs-section")

    browser.sign_in("alice")
    alice_job = browser.start(MEDIA.format("alice"))
    assert browser.job_ids() == [alice_job]
    browser.sign_out()

    browser.sign_in("bob")
    assert alice_job not in browser.job_ids()
    bob_job = browser.start(MEDIA.format("bob"))
    browser.open_app()  # a fresh load lists from the server: bob's only
    browser.wait(lambda: browser.job_ids() == [bob_job], 30, "bob's list")
    browser.sign_out()

    browser.sign_in("alice")
    browser.wait(lambda: browser.job_ids() == [alice_job], 30, "alice's list")
    assert not browser.driver.find_element(By.ID, "who-role").text  # not an operator
