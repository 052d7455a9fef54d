"""Fixtures: the local MongoDB-compatible server (or CRON_MONGODB_URI), settings, a database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from shared.db import Database, create_client, ensure_indexes
from shared.settings import Settings, load_settings
from tests.support import TEST_JWT_SECRET, external_mongodb_uri
from tools.local_mongo import LocalMongo


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    """Connection string of the server every data test uses (started once per session)."""
    external = external_mongodb_uri()
    if external:
        yield external
        return
    with LocalMongo() as server:
        yield server.uri


@pytest.fixture
def db_name() -> str:
    """A fresh database name per test: no collection drops, no cross-test leakage."""
    return f"cronjobs_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    """Settings for one test: its own database, a known JWT secret, fast worker timings."""
    return load_settings(
        {},
        mongodb_uri=mongo_uri,
        db_name=db_name,
        jwt_secret=TEST_JWT_SECRET,
        log_json=True,
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """The test's database with the service's indexes; dropped afterwards."""
    client = create_client(settings)
    database = client[settings.db_name]
    await ensure_indexes(database, settings)
    try:
        yield database
    finally:
        await client.drop_database(settings.db_name)
        await client.close()
