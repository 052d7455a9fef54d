"""Jittered slots through the real driver: nominal `scheduledFor`, later `notBefore`, started
only from it, the start deadline moved along."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.db import JOBS, RUNS, Database, Document
from shared.jitter import jittered_start
from shared.model import JobDocument
from shared.settings import Settings
from tests.integration.worker.conftest import StartWorker, worker_settings
from tests.integration.worker.factory import create_job, cron_at, runs_of, slot_in, wait_for
from worker.claiming import Claimer
from worker.scheduling import Scheduler, start_deadline
from worker.store import WorkerStore, parse_job

SLOT = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
AT_SLOT = SLOT + timedelta(milliseconds=1)


async def due_job(db: Database, **options: Any) -> JobDocument:
    job = await create_job(db, "0 * * * *", **options)
    await db[JOBS].update_one({"_id": job.id}, {"$set": {"nextRunAt": SLOT}})
    return job


async def test_a_jittered_slot_is_queued_pending_from_its_offset(
    db: Database, settings: Settings
) -> None:
    jittered = await due_job(db, jitterSeconds=600)
    on_time = await due_job(db)
    store = WorkerStore(db, "w1")
    scheduler = Scheduler(store, worker_settings(settings), asyncio.Event(), lambda: AT_SLOT)
    enqueued = await scheduler.enqueue_due(capacity=10)

    begins = jittered_start(jittered.id, SLOT, 600)
    assert SLOT < begins < SLOT + timedelta(seconds=600)
    [run] = await runs_of(db, jittered.id)
    assert run["scheduledFor"] == SLOT  # the nominal slot stays
    assert run["notBefore"] == begins
    assert run["status"] == "pending"  # not held: it waits in the queue for its start
    assert run["workerId"] is None
    view = parse_job(await db[JOBS].find_one({"_id": jittered.id}) or {})
    threshold = timedelta(seconds=worker_settings(settings).misfire_threshold_seconds)
    assert run["startDeadline"] == start_deadline(view, SLOT, threshold) + (begins - SLOT)
    # The job without jitter is queued held as before, and claimed at once.
    [held] = await runs_of(db, on_time.id)
    assert (held["status"], held["workerId"], held["notBefore"]) == ("running", "w1", SLOT)
    assert [run.job_id for run in enqueued.fresh] == [on_time.id]
    assert enqueued.later == begins


async def test_nobody_starts_a_jittered_run_before_its_not_before(
    db: Database, settings: Settings
) -> None:
    job = await due_job(db, jitterSeconds=600)
    store = WorkerStore(db, "w1")
    scheduler = Scheduler(store, worker_settings(settings), asyncio.Event(), lambda: AT_SLOT)
    await scheduler.enqueue_due(capacity=10)
    [run] = await runs_of(db, job.id)
    begins = run["notBefore"]

    def claimer_at(instant: datetime) -> Claimer:
        return Claimer(store, worker_settings(settings), asyncio.Event(), lambda: instant)

    early = await claimer_at(begins - timedelta(milliseconds=5)).claim(10)
    assert early.claimed == []
    started = await claimer_at(begins + timedelta(milliseconds=5)).claim(10)
    assert [item.run_id for item in started.claimed] == [run["_id"]]


async def test_a_jittered_job_fires_within_its_window_on_a_live_worker(
    db: Database, start_worker: StartWorker
) -> None:
    worker = await start_worker()
    slot = slot_in(1.5)
    job = await create_job(db, cron_at(slot), jitterSeconds=3)
    begins = jittered_start(job.id, slot, 3)

    async def finished() -> list[Document]:
        return await runs_of(db, job.id, status="succeeded")

    [run] = await wait_for(finished, 1.5 + 3 + 10, "the jittered run to finish")
    assert run["scheduledFor"] == slot
    assert run["notBefore"] == begins
    assert begins <= run["startedAt"] < begins + timedelta(seconds=3)
    assert worker.started_runs == 1


async def test_jitter_is_stored_and_read_as_an_option(db: Database) -> None:
    job = await create_job(db, "0 * * * *", jitterSeconds=45)
    stored = await db[JOBS].find_one({"_id": job.id})
    assert stored is not None and stored["jitterSeconds"] == 45
    assert parse_job(stored).options.jitter_seconds == 45
    assert await db[RUNS].count_documents({"jobId": job.id}) == 0
