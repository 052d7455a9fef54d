"""After a slow claim pass only the runs still under this worker's lease start."""

from __future__ import annotations

import asyncio
import time

from shared.db import RUNS, Database
from shared.settings import Settings
from tests.integration.worker.conftest import worker_settings
from tests.integration.worker.test_store import started
from worker.lease_check import keep_if_slow
from worker.records import utc_now
from worker.store import WorkerStore


async def test_runs_reaped_during_a_slow_pass_are_not_started(
    db: Database, settings: Settings
) -> None:
    store = WorkerStore(db, "w1")
    kept, reaped = await started(db, store), await started(db, store)
    await db[RUNS].update_one({"_id": reaped.run_id}, {"$set": {"status": "abandoned"}})
    await db[RUNS].update_one({"_id": kept.run_id}, {"$set": {"leaseExpiresAt": utc_now()}})
    fast = worker_settings(settings)
    slow_start = time.monotonic() - fast.heartbeat_seconds - 1
    before = utc_now()
    result = await keep_if_slow(store, [kept, reaped], slow_start, fast, asyncio.Event())
    assert [item.run_id for item in result] == [kept.run_id]
    run = await db[RUNS].find_one({"_id": kept.run_id})
    assert run is not None
    assert run["leaseExpiresAt"] > before  # renewed for the start


async def test_a_fast_pass_is_not_checked(db: Database, settings: Settings) -> None:
    store = WorkerStore(db, "w1")
    item = await started(db, store)
    await db[RUNS].update_one({"_id": item.run_id}, {"$set": {"status": "abandoned"}})
    fast = worker_settings(settings)
    # Within a heartbeat no lease can have expired, so no query is spent on checking.
    assert await keep_if_slow(store, [item], time.monotonic(), fast, asyncio.Event()) == [item]
