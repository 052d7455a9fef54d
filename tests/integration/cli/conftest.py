"""Fixtures of the CLI tests: the environment the command reads, a synchronous database handle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database as SyncDatabase

from shared.db import Database
from shared.settings import Settings
from tests.support import TEST_JWT_SECRET


@pytest.fixture
def environ(settings: Settings) -> dict[str, str]:
    """The variables `cronjobs` is run with: the test's database and the test secret."""
    return {
        "CRON_MONGODB_URI": settings.mongodb_uri,
        "CRON_DB_NAME": settings.db_name,
        "CRON_JWT_SECRET": TEST_JWT_SECRET,
        "CRON_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def store(db: Database, settings: Settings) -> Iterator[SyncDatabase[dict[str, Any]]]:
    """A synchronous handle on the test's database (indexed and dropped by `db`)."""
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongodb_uri, tz_aware=True)
    try:
        yield client[settings.db_name]
    finally:
        client.close()
