"""Bounds and one-off jobs on two real workers: each one-off runs once and its job completes;
a job with `maxRuns` completes after that many successes; nothing runs past `endAt`."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from shared.db import Database
from shared.runs import utc_now
from tests.integration.worker.factory import FINAL, create_job, job_of, runs_of, wait_for
from tests.process.conftest import FAST_WORKER_ENV, SpawnWorker
from tests.process.worker.conftest import wait_ready

pytestmark = pytest.mark.process

# A run still open after its slot ends within a lease plus a few heartbeats (reaped else).
SETTLE_SECONDS = 3 * (
    float(FAST_WORKER_ENV["CRON_LEASE_SECONDS"]) + float(FAST_WORKER_ENV["CRON_HEARTBEAT_SECONDS"])
)


async def test_one_offs_and_bounded_jobs_on_two_workers(
    db: Database, spawn_worker: SpawnWorker
) -> None:
    workers = [spawn_worker(f"bounds-{index}") for index in range(2)]
    wait_ready(*workers)
    now = utc_now().replace(microsecond=0)
    one_offs = [
        await create_job(db, run_at=now + timedelta(seconds=2 + index % 3), overlapPolicy="allow")
        for index in range(6)
    ]
    limited = await create_job(db, "* * * * * *", max_runs=3, overlapPolicy="allow")
    end = now + timedelta(seconds=4)
    ending = await create_job(db, "* * * * * *", end_at=end, overlapPolicy="allow")
    jobs = [*one_offs, limited, ending]

    async def all_completed() -> bool:
        stored = [await job_of(db, job.id) for job in jobs]
        return all(job is not None and job["status"] == "completed" for job in stored)

    await wait_for(all_completed, 6 + SETTLE_SECONDS, "every job to complete")
    await asyncio.sleep(2)  # nothing more may happen to a completed job
    for job in one_offs:
        runs = await runs_of(db, job.id)
        assert [(run["scheduledFor"], run["status"]) for run in runs] == [(job.run_at, "succeeded")]
    limited_runs = await runs_of(db, limited.id)
    succeeded = [run for run in limited_runs if run["status"] == "succeeded"]
    assert len(succeeded) == 3, [run["status"] for run in limited_runs]
    assert all(run["status"] in FINAL for run in limited_runs)
    stored = await job_of(db, limited.id)
    assert stored is not None
    assert (stored["scheduledSuccessCount"], stored["nextRunAt"]) == (3, None)
    ending_runs = await runs_of(db, ending.id)
    assert ending_runs and all(run["scheduledFor"] <= end for run in ending_runs)
    assert ending_runs[-1]["scheduledFor"] == end
