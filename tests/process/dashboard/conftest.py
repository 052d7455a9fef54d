"""A real `cronjobs-api` process on the test database, and jobs created through its REST API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.settings import Settings
from shared.tokens import mint_token
from tests.support import TEST_JWT_SECRET
from tools.api_process import ApiProcess

ROOT = Path(__file__).resolve().parents[3]
# `CRON_UPDATE_SCREENSHOTS=1 pytest tests/process/dashboard` refreshes the committed images.
SCREENSHOTS_DIR = ROOT / "docs" / "dashboard"


@pytest.fixture(scope="module")
def api_process(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    """One API process per module, on its own database (dropped by no one: names are unique)."""
    scratch = tmp_path_factory.mktemp("dashboard-api")
    env = {
        "CRON_MONGODB_URI": mongo_uri,
        "CRON_DB_NAME": f"cronjobs_dash_{os.getpid()}_{scratch.name[-6:]}",
        "CRON_JWT_SECRET": TEST_JWT_SECRET,
        "CRON_RATE_LIMIT": "100000/minute",
        "CRON_LOG_JSON": "true",
        "CRON_DASHBOARD_SESSION_MINUTES": "30",
    }
    with ApiProcess(env, scratch / "api.log") as process:
        yield process


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the test saves its screenshots: docs/dashboard/ when asked to refresh them."""
    if os.environ.get("CRON_UPDATE_SCREENSHOTS") == "1":
        return SCREENSHOTS_DIR
    return tmp_path


def token(api: ApiProcess, sub: str, roles: list[str] | None = None) -> str:
    """A bearer token the process accepts."""
    settings = Settings.model_validate({"jwt_secret": TEST_JWT_SECRET})
    return mint_token(settings, sub, roles=roles or [], ttl_seconds=3600)


def create_job(api: ApiProcess, owner: str, name: str, **fields: object) -> dict[str, object]:
    """Create a job as its owner would, through POST /api/cron/jobs."""
    body = {
        "name": name,
        "type": "sendEmail",
        "cron": "0 8 * * 1-5",
        "timezone": "Europe/Berlin",
        "payload": {
            "to": [f"{owner}@example.com"],
            "subject": "Stand-up",
            "template": "reminder",
            "params": {"title": "Stand-up at 9:00 <b>sharp</b>"},
        },
        **fields,
    }
    response = httpx.post(
        f"{api.base_url}/api/cron/jobs",
        json=body,
        headers={"Authorization": f"Bearer {token(api, owner)}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    job: dict[str, object] = response.json()
    return job
