"""Pending-run claims against the server: run-now and retries, once, and refused when moot."""

from __future__ import annotations

import asyncio

from shared import jobs_repo
from shared.db import JOBS, RUNS, Database
from shared.settings import Settings
from tests.integration.worker.conftest import worker_settings
from tests.integration.worker.factory import create_job, job_of
from worker.pending import JOB_DELETED, JOB_PAUSED, PendingClaimer
from worker.records import utc_now
from worker.store import WorkerStore


async def test_pending_runs_are_claimed_once_and_refused_when_their_job_is_gone(
    db: Database, settings: Settings
) -> None:
    kept = await create_job(db, "0 0 9 * * *")
    gone = await create_job(db, "0 0 9 * * *")
    paused = await create_job(db, "0 0 9 * * *", enabled=False)
    manual = await jobs_repo.queue_run_now(db, kept)
    orphan = await jobs_repo.queue_run_now(db, gone)
    paused_manual = await jobs_repo.queue_run_now(db, paused)
    retry = await db[RUNS].insert_one(
        {
            "jobId": paused.id,
            "ownerId": paused.owner_id,
            "type": "noop",
            "slot": "2026-01-01T00:00:00Z",
            "scheduledFor": utc_now(),
            "trigger": "retry",
            "attempt": 2,
            "status": "pending",
            "notBefore": utc_now(),
            "createdAt": utc_now(),
        }
    )
    await db[JOBS].delete_one({"_id": gone.id})
    first, other = (
        PendingClaimer(WorkerStore(db, name), worker_settings(settings), asyncio.Event())
        for name in ("w1", "w2")
    )
    passes = await asyncio.gather(first.claim(10), other.claim(10))
    claimed = sorted(str(item.run_id) for result in passes for item in result.claimed)
    assert claimed == sorted([str(manual), str(paused_manual)])  # a paused job may run now
    statuses = {run["_id"]: run for run in await db[RUNS].find({}).to_list()}
    assert (statuses[orphan]["status"], statuses[orphan]["error"]) == ("skipped", JOB_DELETED)
    refused = statuses[retry.inserted_id]
    assert (refused["status"], refused["error"]) == ("skipped", JOB_PAUSED)
    stored = await job_of(db, kept.id)
    assert stored is not None
    assert stored["activeRunIds"] == [manual]
    assert stored["status"] == "running"
    assert stored["nextRunAt"] == kept.next_run_at  # run-now leaves the schedule alone
    paused_job = await job_of(db, paused.id)
    assert paused_job is not None
    assert paused_job["status"] == "paused"
