"""A real `cronjobs-api` process on the test database, and jobs created through its REST API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId
from pymongo import MongoClient

from shared.db import RUNS, WORKERS
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


@pytest.fixture(scope="module")
def activity(api_process: ApiProcess, mongo_uri: str) -> None:
    """Some history for the overview, failures and workers pages: heartbeats and ended runs."""
    now = datetime.now(UTC)
    runs = []
    for index in range(40):
        status = ("failed", "timeout", "abandoned")[index % 3] if index % 4 == 0 else "succeeded"
        scheduled = now - timedelta(minutes=index * 3)
        runs.append(
            {
                "_id": ObjectId(),
                "jobId": ObjectId(),
                "ownerId": f"user-{index % 5}",
                "jobName": f"digest {index % 5}",
                "type": ("sendEmail", "httpRequest")[index // 4 % 2],
                "slot": scheduled.isoformat(),
                "scheduledFor": scheduled,
                "trigger": "schedule",
                "attempt": 1,
                "status": status,
                "createdAt": scheduled,
                "startedAt": scheduled + timedelta(milliseconds=40 + index * 7),
                "endedAt": scheduled + timedelta(seconds=2),
                "durationMs": 1960,
                "error": {
                    "failed": ("SMTP relay refused the message", "HTTP 503 from hooks.example.com")[
                        index // 4 % 2
                    ],
                    "timeout": "timed out after 60 s",
                    "abandoned": "lease expired (worker lost)",
                }.get(status),
            }
        )
    workers = [
        {
            "_id": f"worker-{name}",
            "name": name,
            "host": f"host-{name}",
            "pid": 4100 + index,
            "version": "0.1.0",
            "startedAt": now - timedelta(hours=3),
            "lastSeenAt": now - timedelta(seconds=index * 4),
            "runsInFlight": index,
            "mode": "streams" if index < 2 else "polling",
        }
        for index, name in enumerate(("alpha", "beta", "gamma"))
    ]
    workers.append(
        {
            **workers[0],
            "_id": "worker-old",
            "name": "delta",
            "lastSeenAt": now - timedelta(hours=5),
            "stoppedAt": now - timedelta(hours=5),
        }
    )
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, tz_aware=True)
    try:
        database = client[api_process.env["CRON_DB_NAME"]]
        database[RUNS].insert_many(runs)
        database[WORKERS].insert_many(workers)
    finally:
        client.close()
