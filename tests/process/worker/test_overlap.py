"""Overlap `skip` across real workers: scheduled slots, retries and run-now taps never overlap.

Three workers, one every-second `skip` job whose handler takes longer than a second and fails
its first attempt (so every slot queues a retry at once), and run-now taps arriving all the
time, some through the API's reservation and some as if two API instances had raced it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from itertools import pairwise

import pytest
from bson import ObjectId

from shared import jobs_repo
from shared import runs as run_records
from shared.db import RUNS, Database
from shared.runs import utc_now
from tests.integration.worker.factory import create_job, wait_for
from tests.process.conftest import FAST_WORKER_ENV, SpawnWorker
from tests.process.worker.conftest import wait_ready

pytestmark = pytest.mark.process

WINDOW_SECONDS = 12
HANDLER_SECONDS = 0.5
BURST = 3
STARTED = ("succeeded", "failed", "timeout", "abandoned")


async def tap_run_now(db: Database, job_id: ObjectId, seconds: int) -> int:
    """Every second, queue run-now requests all due at the same instant (half a second after
    a slot, when that slot's run ends and its retry is queued); how many were queued."""
    queued = 0
    for _ in range(seconds):
        job = await jobs_repo.get_job(db, job_id)
        assert job is not None
        now = utc_now()
        due = now.replace(microsecond=500_000) + timedelta(seconds=1)
        with contextlib.suppress(jobs_repo.RunInProgressError):
            await jobs_repo.queue_run_now(db, job, now=due)
            queued += 1
        # As if API instances had raced the reservation: a burst of requests, unchecked.
        await db[RUNS].insert_many([run_records.manual_run(job, now=due) for _ in range(BURST)])
        queued += BURST
        await asyncio.sleep((due - utc_now()).total_seconds() + 0.1)
    return queued


async def test_runs_of_a_skip_job_never_overlap_on_three_workers(
    db: Database, spawn_worker: SpawnWorker
) -> None:
    workers = [spawn_worker(f"overlap-{index}") for index in range(3)]
    wait_ready(*workers)
    job = await create_job(
        db,
        "* * * * * *",
        overlapPolicy="skip",
        payload={"sleepSeconds": HANDLER_SECONDS, "failAttempts": 1},
        retry={"maxAttempts": 2, "backoffSeconds": 0, "backoffMaxSeconds": 0},
    )
    queued = await tap_run_now(db, job.id, WINDOW_SECONDS)
    await jobs_repo.set_enabled(db, job.id, enabled=False)

    # Everything queued is judged within a few claim passes and the last run ends within its
    # handler time; the lease bounds how long a run of a stalled worker could stay open.
    settle = HANDLER_SECONDS + float(FAST_WORKER_ENV["CRON_LEASE_SECONDS"]) * 3 + 10

    async def settled() -> bool:
        open_runs = await db[RUNS].count_documents(
            {"jobId": job.id, "status": {"$in": ["pending", "running"]}}
        )
        return open_runs == 0

    await wait_for(settled, settle, "every run of the job to be settled", interval=0.2)
    runs = await db[RUNS].find({"jobId": job.id, "status": {"$in": list(STARTED)}}).to_list()
    runs.sort(key=lambda run: run["startedAt"])
    triggers = {run["trigger"] for run in runs}
    assert len(runs) >= WINDOW_SECONDS / (HANDLER_SECONDS + 1), runs
    assert {"schedule", "manual", "retry"} & triggers, triggers
    for earlier, later in pairwise(runs):
        assert later["startedAt"] >= earlier["endedAt"], (
            f"{later['trigger']} run {later['_id']} started at {later['startedAt']} while "
            f"{earlier['trigger']} run {earlier['_id']} ran until {earlier['endedAt']}"
        )
    skipped = await db[RUNS].count_documents({"jobId": job.id, "status": "skipped"})
    print(f"\noverlap: {len(runs)} runs ({sorted(triggers)}), {skipped} skipped, {queued} taps")
    assert skipped > 0
    assert all(worker.alive() for worker in workers)
    assert timedelta(0) <= runs[-1]["endedAt"] - runs[0]["startedAt"]
