"""Headless Chromium (Debian's `chromium` + `chromium-driver`) for browser tests, driven by Selenium

The binary and the driver are the system ones installed by `tools/system_deps.sh`; Selenium is
given both paths so that it never tries to download a browser or a driver.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

PAGE_LOAD_TIMEOUT_SECONDS = 30.0


def _system_binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(f"{names[0]} is not installed: run `make system-deps` (Debian packages)")


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium session (its own profile, so no cookies leak between tests)."""
    options = webdriver.ChromeOptions()
    options.binary_location = _system_binary("chromium", "chromium-browser")
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(
        service=Service(_system_binary("chromedriver")),
        options=options,
    )
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def save_screenshot(driver: webdriver.Chrome, path: Path) -> None:
    """Save the whole page as a PNG (the committed screenshots under docs/ come from here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"Chromium could not save a screenshot to {path}")
