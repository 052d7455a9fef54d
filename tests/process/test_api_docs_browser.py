"""The interactive API page works offline: headless Chromium loads it from the API alone.

`UPDATE_SCREENSHOTS=1` also writes the screenshot kept in docs/ (otherwise a temporary one).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chromium, save_screenshot
from tests.process.stack import ROOT, free_port, wait_for
from tests.support import TEST_JWT_SECRET

pytestmark = pytest.mark.process

SCREENSHOT = ROOT / "docs" / "api-reference.png"
START_TIMEOUT = 60.0
RENDER_TIMEOUT = 60.0


@pytest.fixture
def api_url(mongo_uri: str, db_name: str, tmp_path: Path) -> Iterator[str]:
    """A real `cronjobs-api` on a random loopback port; killed afterwards."""
    port = free_port()
    environ = {
        **{key: value for key, value in os.environ.items() if not key.startswith("CRON_")},
        "CRON_API_PORT": str(port),
        "CRON_MONGODB_URI": mongo_uri,
        "CRON_DB_NAME": db_name,
        "CRON_JWT_SECRET": TEST_JWT_SECRET,
    }
    log = (tmp_path / "api.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("cronjobs-api"))],
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, (tmp_path / "api.log").read_text()
        try:
            return httpx.get(f"{base}/api/cron/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, START_TIMEOUT, "cronjobs-api to answer")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_chromium_shows_the_endpoints_without_any_other_host(api_url: str, tmp_path: Path) -> None:
    with chromium(width=1280, height=1600) as driver:
        driver.get(f"{api_url}/api/cron/schema")
        WebDriverWait(driver, RENDER_TIMEOUT).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        )
        paths = {
            element.get_attribute("data-path")
            for element in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
        }
        assert {
            "/api/cron/jobs",
            "/api/cron/jobs/{job_id}",
            "/api/cron/jobs/{job_id}/run-now",
            "/api/cron/jobs/{job_id}/runs",
            "/api/cron/job-types",
            "/api/cron/preview",
        } <= paths
        fetched = driver.execute_script(
            "return performance.getEntriesByType('resource').map(entry => entry.name)"
        )
        assert fetched, "the page loaded no assets"
        assert [url for url in fetched if not url.startswith(api_url)] == []
        shot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / "p.png"
        save_screenshot(driver, shot)
    assert shot.stat().st_size > 10_000
    assert SCREENSHOT.exists(), "docs/api-reference.png: run with UPDATE_SCREENSHOTS=1"
