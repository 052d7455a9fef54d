"""Fixtures: a signed-in dashboard session on the test app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest

from api.app import create_app
from api.dashboard import DASHBOARD_STATE_KEY
from api.dependencies import services_of
from shared.settings import Settings
from tests.integration.api.dashboard.helpers import DashboardSession
from tests.unit.api.echo import registry_with_echo


@pytest.fixture
def dashboard_settings(api_settings: Settings) -> Settings:
    """The settings the dashboard app gets (a test may override this fixture)."""
    return api_settings


@pytest.fixture
async def browser(dashboard_settings: Settings, db: Any) -> AsyncIterator[DashboardSession]:
    """A cookie-keeping client on the app (not signed in)."""
    api_settings = dashboard_settings
    app = create_app(api_settings, registry=registry_with_echo())
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cast(Any, app)),
        base_url="http://testserver",
        follow_redirects=False,
    )
    try:
        yield DashboardSession(http, api_settings)
    finally:
        await http.aclose()
        await app.state[DASHBOARD_STATE_KEY].overview.close()  # no lifespan under ASGITransport
        await services_of(app.state).client.close()


@pytest.fixture
async def admin(browser: DashboardSession) -> DashboardSession:
    """The session after an admin signed in."""
    response = await browser.sign_in()
    assert response.status_code == 303, response.text
    return browser
