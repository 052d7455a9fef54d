"""Interval jobs on two real workers: every grid slot gets exactly one record."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from shared import jobs_repo
from shared.db import Database
from shared.runs import utc_now
from tests.integration.worker.factory import FINAL, create_job, runs_of, wait_for
from tests.process.conftest import FAST_WORKER_ENV, SpawnWorker
from tests.process.worker.conftest import wait_ready

pytestmark = pytest.mark.process

WINDOW_SECONDS = 6
# A run still open after the window ends within a lease plus a few heartbeats (reaped else).
SETTLE_SECONDS = 3 * (
    float(FAST_WORKER_ENV["CRON_LEASE_SECONDS"]) + float(FAST_WORKER_ENV["CRON_HEARTBEAT_SECONDS"])
)


async def test_two_workers_record_each_interval_slot_once(
    db: Database, spawn_worker: SpawnWorker
) -> None:
    workers = [spawn_worker(f"interval-{index}") for index in range(2)]
    wait_ready(*workers)
    jobs = [await create_job(db, every=every, overlapPolicy="allow") for every in ("PT1S", "PT2S")]
    await asyncio.sleep(WINDOW_SECONDS)
    stopped_at = utc_now()
    for job in jobs:
        await jobs_repo.set_enabled(db, job.id, enabled=False, now=stopped_at)
    # A slot that fell due while the pause was on its way was rightly enqueued by a worker.
    pause_landed_at = utc_now()

    async def all_final() -> bool:
        runs = [run for job in jobs for run in await runs_of(db, job.id)]
        return all(run["status"] in FINAL for run in runs)

    await wait_for(all_final, SETTLE_SECONDS, "every run of the window to end")
    ran_on: set[str] = set()
    for job, step in zip(jobs, (1, 2), strict=True):
        assert job.anchor_at is not None
        runs = await runs_of(db, job.id)
        assert Counter((run["slot"], run["attempt"]) for run in runs).most_common(1)[0][1] == 1
        slots = [run["scheduledFor"] for run in runs]
        grid = [job.anchor_at + timedelta(seconds=step * k) for k in range(1, WINDOW_SECONDS * 3)]
        # Every slot of the grid up to the pause has one record (ran, missed or skipped);
        # the only extra ones are slots that fell due before the pause write landed.
        before_pause = [slot for slot in grid if slot <= stopped_at]
        up_to_landing = [slot for slot in grid if slot <= pause_landed_at]
        assert slots[: len(before_pause)] == before_pause, (slots, grid)
        assert slots == up_to_landing[: len(slots)], (slots, grid)
        succeeded = [run for run in runs if run["status"] == "succeeded"]
        assert succeeded, [run["status"] for run in runs]
        ran_on.update(str(run["workerId"]).split(":")[0] for run in succeeded)
    assert ran_on <= {worker.name for worker in workers}
