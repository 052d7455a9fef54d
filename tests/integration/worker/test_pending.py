"""Pending-run claims against the server: run-now and retries, once, and refused when moot."""

from __future__ import annotations

import asyncio

from bson import ObjectId

from shared import jobs_repo
from shared.db import JOBS, RUNS, Database
from shared.model import JobDocument
from shared.settings import Settings
from tests.integration.worker.conftest import worker_settings
from tests.integration.worker.factory import create_job, job_of
from worker.pending import JOB_DELETED, JOB_PAUSED, PendingClaimer
from worker.planner import OVERLAP
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


async def pending_retry(db: Database, job: JobDocument, attempt: int = 2) -> ObjectId:
    """A retry of `job` due now, as a finisher queues it."""
    result = await db[RUNS].insert_one(
        {
            "jobId": job.id,
            "ownerId": job.owner_id,
            "type": "noop",
            "slot": f"slot-{attempt}",
            "scheduledFor": utc_now(),
            "trigger": "retry",
            "attempt": attempt,
            "status": "pending",
            "notBefore": utc_now(),
            "createdAt": utc_now(),
        }
    )
    return ObjectId(result.inserted_id)


async def test_overlap_skip_holds_for_run_now_and_retries_of_a_busy_job(
    db: Database, settings: Settings
) -> None:
    busy = await create_job(db, "0 0 9 * * *", overlapPolicy="skip")
    manual = await jobs_repo.queue_run_now(db, busy)
    retry = await pending_retry(db, busy)
    # A scheduled run of the job started after the run-now was queued.
    await db[JOBS].update_one({"_id": busy.id}, {"$set": {"activeRunIds": [ObjectId()]}})
    result = await PendingClaimer(
        WorkerStore(db, "w1"), worker_settings(settings), asyncio.Event()
    ).claim(10)
    assert result.claimed == []
    skipped = await db[RUNS].find_one({"_id": manual})
    assert skipped is not None
    assert (skipped["status"], skipped["error"]) == ("skipped", OVERLAP)
    waiting = await db[RUNS].find_one({"_id": retry})
    assert waiting is not None
    assert waiting["status"] == "pending"  # back in the queue, after its backoff
    assert waiting["workerId"] is None
    assert waiting["notBefore"] > utc_now()


async def test_two_pending_runs_of_one_skip_job_do_not_start_together(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "0 0 9 * * *", overlapPolicy="skip")
    first, second = await pending_retry(db, job, 2), await pending_retry(db, job, 3)
    result = await PendingClaimer(
        WorkerStore(db, "w1"), worker_settings(settings), asyncio.Event()
    ).claim(10)
    assert len(result.claimed) == 1
    statuses = {run["_id"]: run["status"] async for run in db[RUNS].find({})}
    assert sorted(statuses[run_id] for run_id in (first, second)) == ["pending", "running"]


async def test_overlap_allow_starts_pending_runs_beside_a_running_one(
    db: Database, settings: Settings
) -> None:
    job = await create_job(db, "0 0 9 * * *", overlapPolicy="allow")
    await jobs_repo.queue_run_now(db, job)
    await db[JOBS].update_one({"_id": job.id}, {"$set": {"activeRunIds": [ObjectId()]}})
    result = await PendingClaimer(
        WorkerStore(db, "w1"), worker_settings(settings), asyncio.Event()
    ).claim(10)
    assert len(result.claimed) == 1
