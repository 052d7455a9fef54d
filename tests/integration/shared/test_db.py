"""Indexes: created idempotently, and the unique ones really enforce uniqueness."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from shared.db import JOBS, RUNS, Database, ensure_indexes, index_plan
from shared.settings import Settings


async def _index_names(db: Database, collection: str) -> set[str]:
    return {info["name"] async for info in await db[collection].list_indexes()}


async def test_ensure_indexes_creates_the_plan_and_is_idempotent(
    db: Database, settings: Settings
) -> None:
    await ensure_indexes(db, settings)  # second run (the fixture ran it once) changes nothing
    for collection, models in index_plan(settings).items():
        assert {m.document["name"] for m in models} <= await _index_names(db, collection)


async def test_job_name_is_unique_per_owner(db: Database) -> None:
    await db[JOBS].insert_one({"ownerId": "alice", "name": "digest"})
    await db[JOBS].insert_one({"ownerId": "bob", "name": "digest"})
    with pytest.raises(DuplicateKeyError):
        await db[JOBS].insert_one({"ownerId": "alice", "name": "digest"})


async def test_one_run_per_job_slot_and_attempt(db: Database) -> None:
    job_id = ObjectId()
    run = {"jobId": job_id, "slot": "2026-01-01T08:00:00Z", "attempt": 1}
    await db[RUNS].insert_one(dict(run))
    await db[RUNS].insert_one({**run, "attempt": 2})
    with pytest.raises(DuplicateKeyError):
        await db[RUNS].insert_one(dict(run))


async def test_changed_retention_replaces_the_ttl_index(db: Database, settings: Settings) -> None:
    longer = settings.model_copy(update={"run_retention_days": 90})
    await ensure_indexes(db, longer)
    indexes = {info["name"]: info async for info in await db[RUNS].list_indexes()}
    assert indexes["retention_ttl"]["expireAfterSeconds"] == 90 * 86_400


async def test_datetimes_round_trip_timezone_aware(db: Database) -> None:
    moment = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    inserted = await db[JOBS].insert_one({"ownerId": "x", "name": "t", "nextRunAt": moment})
    stored = await db[JOBS].find_one({"_id": inserted.inserted_id})
    assert stored is not None
    assert stored["nextRunAt"] == moment
    assert stored["nextRunAt"].tzinfo is not None
