"""Two `cronjobs-api` processes on the test's database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.db import Database
from shared.settings import Settings
from tests.process.api.support import ApiProcess
from tests.support import TEST_JWT_SECRET


@pytest.fixture
def two_apis(
    settings: Settings, db: Database, tmp_path: Path
) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    """Both processes serve `settings`' database (`db` drops it afterwards)."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("CRON_")}
    env = {
        **base,
        "CRON_MONGODB_URI": settings.mongodb_uri,
        "CRON_DB_NAME": settings.db_name,
        "CRON_JWT_SECRET": TEST_JWT_SECRET,
        "CRON_API_HOST": "127.0.0.1",
        "CRON_MAX_JOBS_PER_OWNER": "7",
        "CRON_RATE_LIMIT": "25/hour",
        "CRON_LOG_LEVEL": "WARNING",
    }
    started = [ApiProcess(env, tmp_path / f"api-{index}.log") for index in range(2)]
    try:
        for api in started:
            api.wait_ready()
        yield started[0], started[1]
    finally:
        for api in started:
            api.stop()
