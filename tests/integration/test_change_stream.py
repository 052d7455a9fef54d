"""The local server delivers change-stream events through PyMongo's async API."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from bson import Timestamp

from shared.db import Database
from tests.support import external_mongodb_uri


async def _events(db: Database, count: int, wait_seconds: float = 5.0) -> list[dict[str, Any]]:
    """Insert, update and delete one document; return the first `count` events seen."""
    collection = db["cron_jobs"]
    ping = await db.command("ping")
    # Real MongoDB reports operationTime; the stand-in does not (README, known differences).
    start = ping.get("operationTime") or Timestamp(int(time.time()), 0)
    events: list[dict[str, Any]] = []
    async with await collection.watch(
        full_document="updateLookup", start_at_operation_time=start, max_await_time_ms=200
    ) as stream:
        inserted = await collection.insert_one({"name": "a", "n": 1})
        await collection.update_one({"_id": inserted.inserted_id}, {"$set": {"n": 2}})
        await collection.delete_one({"_id": inserted.inserted_id})
        deadline = time.monotonic() + wait_seconds
        while len(events) < count and time.monotonic() < deadline:
            change = await stream.try_next()
            if change is None:
                await asyncio.sleep(0.05)
            else:
                events.append(change)
    assert len(events) == count, f"expected {count} events, got {events}"
    assert events[0]["documentKey"]["_id"] == inserted.inserted_id
    return events


async def test_change_stream_receives_insert_update_delete(db: Database) -> None:
    events = await _events(db, 3)
    assert [e["operationType"] for e in events] == ["insert", "update", "delete"]
    assert events[0]["fullDocument"]["n"] == 1
    assert events[2]["documentKey"] == events[0]["documentKey"]


@pytest.mark.xfail(
    external_mongodb_uri() is None,
    reason="known difference: mongo-java-server puts the update operators in documentKey and "
    "sends no updateDescription for update events",
    strict=True,
)
async def test_update_event_names_the_document_and_fields(db: Database) -> None:
    update = (await _events(db, 3))[1]
    assert update["documentKey"]["_id"] is not None
    assert update["updateDescription"]["updatedFields"] == {"n": 2}
    assert update["fullDocument"]["n"] == 2
