"""Three workers, 200 jobs firing every second for 20 s: every slot once, none lost, work shared."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from shared.db import JOBS, RUNS, Database
from shared.runs import utc_now
from tests.integration.worker.factory import create_job, wait_for
from tests.process.conftest import SpawnWorker
from tests.process.worker.conftest import LagBook, wait_ready

pytestmark = pytest.mark.process

JOBS_COUNT = 200
WINDOW_SECONDS = 20
# Leases long enough that a busy machine cannot make a live worker look dead.
STEADY = {"CRON_LEASE_SECONDS": "20", "CRON_HEARTBEAT_SECONDS": "2"}


async def test_three_workers_run_every_slot_exactly_once(
    isolated_db: tuple[str, Database], spawn_worker: SpawnWorker, lag_book: LagBook
) -> None:
    uri, db = isolated_db
    workers = [spawn_worker(f"herd-{index}", CRON_MONGODB_URI=uri, **STEADY) for index in range(3)]
    wait_ready(*workers)
    jobs = await asyncio.gather(
        *(create_job(db, "* * * * * *", overlapPolicy="allow") for _ in range(JOBS_COUNT))
    )
    start = max(job.next_run_at for job in jobs if job.next_run_at) + timedelta(seconds=1)
    end = start + timedelta(seconds=WINDOW_SECONDS - 1)
    await asyncio.sleep((end - utc_now()).total_seconds() + 0.5)

    async def window_claimed() -> bool:
        # Every slot of the window queued (the job moved past it) and taken from the queue.
        unqueued = await db[JOBS].count_documents({"nextRunAt": {"$lte": end}})
        queued = await db[RUNS].count_documents(
            {"status": "pending", "scheduledFor": {"$lte": end}}
        )
        return unqueued == 0 and queued == 0

    await wait_for(window_claimed, 10, "every slot of the window to be claimed")
    await db[JOBS].update_many({}, {"$set": {"enabled": False, "nextRunAt": None}})
    window = {"scheduledFor": {"$gte": start, "$lte": end}}

    async def window_finished() -> bool:
        return await db[RUNS].count_documents({**window, "status": "running"}) == 0

    await wait_for(window_finished, 10, "every run of the window to finish")
    assert all(worker.alive() for worker in workers)

    runs = await db[RUNS].find(window).to_list()
    pairs = Counter((run["jobId"], run["scheduledFor"]) for run in runs)
    twice = [run for run in runs if pairs[(run["jobId"], run["scheduledFor"])] > 1]
    assert max(pairs.values()) == 1, f"a (job, slot) was recorded twice: {twice[:4]}"
    expected = {
        (job.id, start + timedelta(seconds=offset))
        for job in jobs
        for offset in range(WINDOW_SECONDS)
    }
    assert set(pairs) == expected, f"{len(expected - set(pairs))} slots have no record"
    statuses = Counter(run["status"] for run in runs)
    reasons = Counter(run.get("error") for run in runs if run["status"] != "succeeded")
    assert statuses == {"succeeded": JOBS_COUNT * WINDOW_SECONDS}, (statuses, reasons)
    assert {run["attempt"] for run in runs} == {1}
    shares = Counter(run["workerId"].split(":")[0] for run in runs)
    assert set(shares) == {"herd-0", "herd-1", "herd-2"}
    assert min(shares.values()) >= 0.1 * len(runs), shares
    lags = lag_book.add("3 workers x 200 jobs every second", runs)
    assert sorted(lags)[len(lags) // 2] < 0.5
