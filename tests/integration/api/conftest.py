"""Fixtures for HTTP tests: the app on the test database, an httpx client, tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx
import pytest

from api.app import create_app
from api.dependencies import services_of
from shared.db import Database
from shared.settings import Settings
from tests.integration.api.helpers import Api
from tests.unit.api.echo import registry_with_echo

# High enough that only the rate-limit test (which lowers it) ever sees a 429.
UNLIMITED = "100000/minute"


def with_overrides(settings: Settings, **overrides: Any) -> Settings:
    """`settings` with some fields changed (validated again)."""
    values = {name: getattr(settings, name) for name in type(settings).model_fields}
    return Settings.model_validate({**values, **overrides})


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    """The test settings without a practical rate limit."""
    return with_overrides(settings, rate_limit=UNLIMITED)


ApiFactory = Callable[..., Any]


@pytest.fixture
async def make_api(api_settings: Settings, db: Database) -> AsyncIterator[ApiFactory]:
    """Build an Api client for the app, optionally with changed settings (same database)."""
    opened: list[tuple[httpx.AsyncClient, Any]] = []

    async def factory(**overrides: Any) -> Api:
        current = with_overrides(api_settings, **overrides) if overrides else api_settings
        app = create_app(current, registry=registry_with_echo())
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=cast(Any, app)), base_url="http://testserver"
        )
        opened.append((http, app))
        return Api(http, current, db)

    yield factory
    for http, app in opened:
        await http.aclose()
        await services_of(app.state).client.close()


@pytest.fixture
async def api(make_api: ApiFactory) -> Api:
    """The API with the test settings."""
    result: Api = await make_api()
    return result
