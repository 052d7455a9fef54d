"""The dashboard in headless Chromium against a real API process (tests/browser.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver import Chrome as WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from api.auth import Principal
from api.dashboard.session import COOKIE_NAME, SessionCodec
from shared.settings import Settings
from tests.browser import chromium, save_screenshot
from tests.process.dashboard.conftest import create_job, token
from tests.support import TEST_JWT_SECRET
from tools.api_process import ApiProcess

pytestmark = pytest.mark.process

WAIT_SECONDS = 20.0
PHONE = (390, 844)
REFRESH_SECONDS = 5  # data-refresh-seconds on the overview


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    """A fresh headless Chromium (no cookies from other tests)."""
    with chromium() as browser:
        yield browser


def _wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    # The job page re-renders its parts after an action: an element found just before a swap
    # is stale when read, which means "not yet", not a failure.
    return WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=[StaleElementReferenceException])


def _sign_in(driver: WebDriver, api: ApiProcess, bearer: str) -> None:
    driver.get(f"{api.base_url}/dashboard/")
    _wait(driver).until(expected_conditions.title_contains("Sign in"))
    driver.find_element(By.ID, "token").send_keys(bearer)
    driver.find_element(By.ID, "sign-in").click()


def _sign_in_as_admin(driver: WebDriver, api: ApiProcess) -> None:
    _sign_in(driver, api, token(api, "ops-oncall", ["admin"]))
    _wait(driver).until(expected_conditions.title_contains("Overview"))


def _status(driver: WebDriver) -> str:
    return driver.find_element(By.ID, "job-status").text


def _fits_the_width(driver: WebDriver) -> bool:
    return bool(
        driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;"
        )
    )


def test_support_flow_find_inspect_pause_run_delete(
    driver: WebDriver, api_process: ApiProcess, screenshots: Path, activity: None
) -> None:
    create_job(api_process, "alice-support", "morning digest")
    other = create_job(api_process, "alice-support", "weekly report")
    create_job(api_process, "bob-support", "bob's reminder")

    driver.get(f"{api_process.base_url}/dashboard/")
    _wait(driver).until(expected_conditions.title_contains("Sign in"))
    save_screenshot(driver, screenshots / "sign-in.png")
    _sign_in_as_admin(driver, api_process)
    assert driver.find_element(By.CLASS_NAME, "who").text == "ops-oncall"
    save_screenshot(driver, screenshots / "overview.png")

    # Find the user's job by owner.
    driver.find_element(By.LINK_TEXT, "Jobs").click()
    owner = _wait(driver).until(expected_conditions.element_to_be_clickable((By.ID, "owner")))
    owner.send_keys("alice-support")
    driver.find_element(By.ID, "search").click()
    _wait(driver).until(expected_conditions.url_contains("owner=alice-support"))
    names = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#jobs tbody td a")]
    assert sorted(names) == ["morning digest", "weekly report"]
    save_screenshot(driver, screenshots / "jobs.png")

    # Open it: ten upcoming fire times, in UTC and in Berlin time (08:00 on weekdays).
    driver.find_element(By.LINK_TEXT, "morning digest").click()
    _wait(driver).until(expected_conditions.title_contains("morning digest"))
    rows = driver.find_elements(By.CSS_SELECTOR, "#fire-times tbody tr")
    assert len(rows) == 10
    for row in rows:
        utc_cell, local_cell = row.find_elements(By.TAG_NAME, "td")
        assert " 08:00:00 CE" in local_cell.text
        assert utc_cell.text.endswith("UTC")
    assert "<b>sharp</b>" in driver.find_element(By.ID, "payload").text  # shown, not rendered
    assert _status(driver) == "idle"
    save_screenshot(driver, screenshots / "job.png")

    # Pause: the status changes.
    driver.find_element(By.ID, "pause").click()
    _wait(driver).until(lambda page: _status(page) == "paused")
    assert "Paused" in driver.find_element(By.ID, "notice").text
    assert driver.find_elements(By.ID, "resume")

    # Run now: the new run appears without a full reload of the page.
    driver.execute_script("window.__sameDocument = true;")
    assert not driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr[data-run-id]")
    driver.find_element(By.ID, "run-now").click()
    _wait(driver).until(
        lambda page: page.find_elements(By.CSS_SELECTOR, "#runs tbody tr[data-run-id]")
    )
    run_row = driver.find_element(By.CSS_SELECTOR, "#runs tbody tr[data-run-id]")
    assert "manual" in run_row.text
    assert driver.execute_script("return window.__sameDocument === true;")
    assert "queued" in driver.find_element(By.ID, "live-message").text
    driver.execute_script("document.getElementById('runs-h').scrollIntoView();")
    save_screenshot(driver, screenshots / "job-after-run-now.png")

    # Delete, with a confirmation step.
    driver.find_element(By.ID, "delete").click()
    _wait(driver).until(expected_conditions.title_contains("Delete"))
    save_screenshot(driver, screenshots / "confirm-delete.png")
    driver.find_element(By.ID, "confirm-delete").click()
    _wait(driver).until(expected_conditions.title_contains("Jobs"))
    assert "Deleted" in driver.find_element(By.CLASS_NAME, "notice").text
    driver.get(f"{api_process.base_url}/dashboard/jobs/?owner=alice-support")
    names = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#jobs tbody td a")]
    assert names == ["weekly report"]
    assert other["name"] == "weekly report"


def test_overview_failures_and_workers_pages(
    driver: WebDriver, api_process: ApiProcess, screenshots: Path, activity: None
) -> None:
    _sign_in_as_admin(driver, api_process)
    alive = driver.find_element(By.ID, "workers-h").text
    assert alive.endswith("3"), alive  # alpha, beta, gamma; delta stopped
    driver.find_element(By.LINK_TEXT, "Failures").click()
    _wait(driver).until(expected_conditions.title_contains("Failures"))
    groups = driver.find_elements(By.CSS_SELECTOR, "#failure-groups tbody tr")
    assert len(groups) == 6  # 3 errors x 2 job types
    save_screenshot(driver, screenshots / "failures.png")
    driver.find_element(By.LINK_TEXT, "Workers").click()
    _wait(driver).until(expected_conditions.title_contains("Workers"))
    states = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#workers tbody tr")]
    assert [state.split(" ")[1] for state in states] == ["alive", "alive", "alive", "stopped"]
    save_screenshot(driver, screenshots / "workers.png")


def test_auto_refresh_can_be_paused_from_the_keyboard(
    driver: WebDriver, api_process: ApiProcess
) -> None:
    _sign_in_as_admin(driver, api_process)

    def figures(page: WebDriver) -> str:
        return str(page.find_element(By.ID, "snapshot-age").text)

    first = figures(driver)
    # The panel is fetched again every REFRESH_SECONDS; its "as of ... (n s ago)" line changes.
    WebDriverWait(driver, 4 * REFRESH_SECONDS).until(lambda page: figures(page) != first)
    toggle = driver.find_element(By.ID, "refresh-toggle")
    toggle.send_keys(Keys.SPACE)
    assert toggle.get_attribute("aria-pressed") == "true"
    assert toggle.text == "Resume auto-refresh"
    paused = figures(driver)
    time.sleep(2 * REFRESH_SECONDS)
    assert figures(driver) == paused


def test_a_non_admin_token_is_refused(driver: WebDriver, api_process: ApiProcess) -> None:
    _sign_in(driver, api_process, token(api_process, "alice-support"))
    message = _wait(driver).until(
        expected_conditions.visibility_of_element_located((By.ID, "error-message"))
    )
    assert "admin role" in message.text
    driver.get(f"{api_process.base_url}/dashboard/jobs/")
    _wait(driver).until(expected_conditions.title_contains("Sign in"))


def test_a_form_posted_without_its_csrf_token_is_refused(
    driver: WebDriver, api_process: ApiProcess
) -> None:
    job = create_job(api_process, "carol-support", "csrf target")
    _sign_in_as_admin(driver, api_process)
    driver.get(f"{api_process.base_url}/dashboard/jobs/{job['id']}")
    _wait(driver).until(expected_conditions.title_contains("csrf target"))
    driver.execute_script(
        "document.querySelectorAll('input[name=_csrf_token]').forEach((e) => e.remove());"
    )
    driver.find_element(By.ID, "pause").click()
    message = _wait(driver).until(
        expected_conditions.visibility_of_element_located((By.ID, "error-message"))
    )
    assert "CSRF" in message.text
    driver.get(f"{api_process.base_url}/dashboard/jobs/{job['id']}")
    assert _status(driver) == "idle"  # nothing was paused


def test_an_expired_session_cookie_sends_you_back_to_sign_in(
    driver: WebDriver, api_process: ApiProcess
) -> None:
    _sign_in_as_admin(driver, api_process)
    settings = Settings.model_validate({"jwt_secret": TEST_JWT_SECRET})
    codec = SessionCodec.of(settings)
    admin = Principal("ops-oncall", frozenset({"admin"}))
    valid, _ = codec.encode(admin)
    expired, _ = codec.encode(admin, now=datetime.now(UTC) - timedelta(hours=2))
    for value, lands_on in ((valid, "Jobs"), (expired, "Sign in")):
        driver.delete_cookie(COOKIE_NAME)
        driver.add_cookie({"name": COOKIE_NAME, "value": value, "path": "/dashboard"})
        driver.get(f"{api_process.base_url}/dashboard/jobs/")
        _wait(driver).until(expected_conditions.title_contains(lands_on))
    assert "next=%2Fdashboard%2Fjobs" in driver.current_url


def test_pages_fit_a_phone_and_start_with_a_skip_link(
    api_process: ApiProcess, screenshots: Path
) -> None:
    job = create_job(api_process, "dave-support", "phone check")
    with chromium(*PHONE) as phone:
        # Headless windows are at least 500 px wide: emulate the phone's viewport exactly.
        width, height = PHONE
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True}
        phone.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        _sign_in_as_admin(phone, api_process)
        assert phone.execute_script("return window.innerWidth;") == width
        phone.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        assert phone.switch_to.active_element.text == "Skip to content"
        for path in ("/dashboard/", "/dashboard/jobs/", f"/dashboard/jobs/{job['id']}"):
            phone.get(f"{api_process.base_url}{path}")
            assert _fits_the_width(phone), path
        save_screenshot(phone, screenshots / "job-phone.png")
