"""MongoDB behaviour the product relies on, shown against the server under test.

On the local stand-in (mongo-java-server) these are expected failures, listed in the README's
"Known differences from MongoDB"; against a real MongoDB (CRON_MONGODB_URI) they must pass.
"""

from __future__ import annotations

import time

import pytest
from bson import Timestamp
from pymongo.errors import PyMongoError

from shared.db import Database
from tests.support import external_mongodb_uri

ON_STAND_IN = external_mongodb_uri() is None


@pytest.mark.xfail(
    ON_STAND_IN, reason="known difference: replies carry no operationTime", strict=True
)
async def test_replies_report_operation_time(db: Database) -> None:
    reply = await db.command("ping")
    assert isinstance(reply.get("operationTime"), Timestamp)


@pytest.mark.xfail(
    ON_STAND_IN,
    reason="known difference: an idle change-stream getMore ignores maxAwaitTimeMS",
    strict=True,
)
async def test_idle_change_stream_get_more_waits_for_max_await(db: Database) -> None:
    start = Timestamp(int(time.time()), 0)
    async with await db["idle"].watch(start_at_operation_time=start, max_await_time_ms=300) as s:
        began = time.monotonic()
        assert await s.try_next() is None
        assert time.monotonic() - began >= 0.25


@pytest.mark.xfail(
    ON_STAND_IN, reason="known difference: updates with an aggregation pipeline fail", strict=True
)
async def test_pipeline_updates_work(db: Database) -> None:
    inserted = await db["pipeline"].insert_one({"a": 1})
    try:
        await db["pipeline"].update_one(
            {"_id": inserted.inserted_id}, [{"$set": {"b": {"$add": ["$a", 1]}}}]
        )
    except PyMongoError as error:  # the stand-in answers with a server-side exception
        pytest.fail(f"pipeline update failed: {error}")
    stored = await db["pipeline"].find_one({"_id": inserted.inserted_id})
    assert stored is not None
    assert stored["b"] == 2
