"""The API's per-client rate limit covers dashboard pages, not their static files."""

from __future__ import annotations

import pytest

from shared.settings import Settings
from tests.integration.api.conftest import with_overrides
from tests.integration.api.dashboard.helpers import DashboardSession


@pytest.fixture
def dashboard_settings(api_settings: Settings) -> Settings:
    return with_overrides(api_settings, rate_limit="4/minute")


async def test_pages_are_rate_limited_but_assets_are_not(browser: DashboardSession) -> None:
    for _ in range(10):
        assert (await browser.http.get("/dashboard/static/dashboard.css")).status_code == 200
        assert (await browser.http.get("/dashboard/static/dashboard.js")).status_code == 200
    statuses = [(await browser.http.get("/dashboard/sign-in")).status_code for _ in range(6)]
    assert statuses[:4] == [200] * 4
    assert statuses[4:] == [429, 429]
    refused = await browser.http.get("/dashboard/sign-in")
    assert "text/html" in refused.headers["content-type"]
