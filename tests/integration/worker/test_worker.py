"""A Worker running in-process against the server: retries, timeouts, overlap, run-now, reaping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from bson import ObjectId

from shared import jobs_repo
from shared.db import JOBS, RUNS, WORKERS, Database, Document
from shared.runs import RunReason, utc_now
from shared.schedule import Schedule
from shared.settings import Settings
from tests.integration.worker.conftest import StartWorker, worker_settings
from tests.integration.worker.factory import (
    FINAL,
    create_job,
    cron_at,
    job_of,
    running_run,
    runs_of,
    slot_in,
    wait_for,
    wait_for_document,
)
from worker.handlers.context import RunContext
from worker.runner import Worker


async def finished_runs(db: Database, job_id: ObjectId, count: int) -> list[Document]:
    async def probe() -> list[Document]:
        runs = await runs_of(db, job_id)
        done = [run for run in runs if run["status"] in FINAL]
        return done if len(done) >= count else []

    return await wait_for(probe, 15, f"{count} finished runs of {job_id}")


async def test_failed_attempts_are_retried_with_backoff(
    db: Database, start_worker: StartWorker
) -> None:
    await start_worker()
    slot = slot_in(1.5)
    retry = {"maxAttempts": 3, "backoffSeconds": 1, "backoffMaxSeconds": 2}
    flaky = await create_job(db, cron_at(slot), payload={"failAttempts": 2}, retry=retry)
    doomed = await create_job(db, cron_at(slot), payload={"failAttempts": 5}, retry=retry)
    runs = await finished_runs(db, flaky.id, 3)
    assert [(run["attempt"], run["trigger"], run["status"]) for run in runs] == [
        (1, "schedule", "failed"),
        (2, "retry", "failed"),
        (3, "retry", "succeeded"),
    ]
    assert {run["slot"] for run in runs} == {runs[0]["slot"]}
    assert runs[0]["error"] == "deliberate failure of attempt 1"
    first_gap = (runs[1]["startedAt"] - runs[0]["endedAt"]).total_seconds()
    second_gap = (runs[2]["startedAt"] - runs[1]["endedAt"]).total_seconds()
    assert 1 <= first_gap < 3  # jittered between backoffSeconds and min(2 x, cap), + the claim
    assert 1 <= second_gap < 3  # jittered between backoffSeconds and min(4 x, cap)
    # The job's bookkeeping is written after the run's record (the finisher's second write).
    job = await wait_for_document(
        lambda: db[JOBS].find_one({"_id": flaky.id, "runCount": 3}), 5, "the third attempt booked"
    )
    assert (job["status"], job["lastError"], job["runCount"], job["failureCount"]) == (
        "idle",
        None,
        3,
        2,
    )
    await finished_runs(db, doomed.id, 3)
    failed = await wait_for_document(
        lambda: db[JOBS].find_one({"_id": doomed.id, "status": "failed"}), 5, "job failed"
    )
    assert failed["lastError"] == "deliberate failure of attempt 3"
    assert doomed.next_run_at is not None
    assert doomed.cron is not None
    following = Schedule.parse(doomed.cron).next_after(doomed.next_run_at)
    assert failed["nextRunAt"] == following  # the schedule is kept


async def test_a_handler_over_its_timeout_is_cancelled(
    db: Database, start_worker: StartWorker
) -> None:
    await start_worker()
    job = await create_job(
        db,
        cron_at(slot_in(1)),
        payload={"sleepSeconds": 30},
        timeoutSeconds=1,
        retry={"maxAttempts": 1},
    )
    [run] = await finished_runs(db, job.id, 1)
    assert run["status"] == "timeout"
    assert run["error"] == "timed out after 1 s"
    assert 1000 <= run["durationMs"] < 3000
    stored = await wait_for_document(
        lambda: db[JOBS].find_one({"_id": job.id, "status": "failed"}), 5, "job failed"
    )
    assert stored["lastError"] == "timed out after 1 s"
    assert stored["activeRunIds"] == []


async def test_overlap_skip_records_slots_while_the_previous_run_is_active(
    db: Database, start_worker: StartWorker
) -> None:
    await start_worker()
    skip = await create_job(db, "* * * * * *", payload={"sleepSeconds": 2.2}, overlapPolicy="skip")
    allow = await create_job(
        db, "* * * * * *", payload={"sleepSeconds": 2.2}, overlapPolicy="allow"
    )
    await finished_runs(db, skip.id, 4)
    await jobs_repo.set_enabled(db, skip.id, enabled=False)
    await jobs_repo.set_enabled(db, allow.id, enabled=False)
    runs = await runs_of(db, skip.id)
    executed = [run for run in runs if run["startedAt"] is not None]
    skipped = [run for run in runs if run["status"] == "skipped"]
    assert skipped
    assert {run["error"] for run in skipped} == {RunReason.OVERLAP.value}
    for earlier, later in pairwise(executed):
        if earlier["endedAt"] is not None:
            assert later["startedAt"] >= earlier["endedAt"] - timedelta(milliseconds=100)
    concurrent = [run for run in await runs_of(db, allow.id) if run["startedAt"] is not None]
    assert len(concurrent) >= 3
    first, second = concurrent[0], concurrent[1]
    assert second["startedAt"] < first["startedAt"] + timedelta(seconds=2)  # ran side by side


async def test_run_now_starts_at_once_and_leaves_the_schedule(
    db: Database, start_worker: StartWorker
) -> None:
    await start_worker()
    job = await create_job(db, "0 0 9 1 1 *")
    paused = await create_job(db, "0 0 9 1 1 *", enabled=False)
    run_id = await jobs_repo.queue_run_now(db, job)
    paused_run_id = await jobs_repo.queue_run_now(db, paused)
    [run] = await finished_runs(db, job.id, 1)
    assert run["_id"] == run_id
    assert (run["trigger"], run["status"], run["slot"]) == (
        "manual",
        "succeeded",
        f"manual:{run_id}",
    )
    assert run["startedAt"] - run["createdAt"] < timedelta(seconds=1.5)
    [paused_run] = await finished_runs(db, paused.id, 1)
    assert (paused_run["_id"], paused_run["status"]) == (paused_run_id, "succeeded")
    stored = await wait_for_document(
        lambda: db[JOBS].find_one({"_id": job.id, "runCount": 1}), 5, "job updated"
    )
    assert stored["nextRunAt"] == job.next_run_at
    assert stored["lastRunAt"] == run["startedAt"]
    paused_job = await wait_for_document(
        lambda: db[JOBS].find_one({"_id": paused.id, "runCount": 1}), 5, "paused job updated"
    )
    assert paused_job["status"] == "paused"


async def test_runs_of_a_dead_worker_are_abandoned_and_retried(
    db: Database, start_worker: StartWorker
) -> None:
    job = await create_job(db, "0 0 9 1 1 *", retry={"maxAttempts": 2, "backoffSeconds": 0})
    now = utc_now()
    orphan = running_run(
        job,
        scheduled_for=datetime(2026, 1, 1, 9, tzinfo=UTC),
        started_at=now - timedelta(seconds=10),
        worker_id="ghost:1:dead",
        lease_until=now - timedelta(seconds=1),
    )
    await db[RUNS].insert_one(orphan)
    await db[JOBS].update_one(
        {"_id": job.id}, {"$set": {"status": "running", "activeRunIds": [orphan["_id"]]}}
    )
    await start_worker()
    abandoned, retried = await finished_runs(db, job.id, 2)
    assert abandoned["_id"] == orphan["_id"]
    assert abandoned["status"] == "abandoned"
    assert abandoned["error"] == f"{RunReason.LEASE_EXPIRED.value} (ghost:1:dead)"
    assert (retried["attempt"], retried["trigger"], retried["status"]) == (2, "retry", "succeeded")
    assert retried["slot"] == abandoned["slot"]
    stored = await wait_for_document(
        lambda: db[JOBS].find_one({"_id": job.id, "runCount": 2}), 5, "job updated"
    )
    assert (stored["status"], stored["failureCount"], stored["activeRunIds"]) == ("idle", 1, [])


async def test_a_disabled_type_fails_with_a_clear_error(
    db: Database, start_worker: StartWorker
) -> None:
    await start_worker(disabled_types=["noop"])
    job = await create_job(db, cron_at(slot_in(1)))
    [run] = await finished_runs(db, job.id, 1)
    assert run["status"] == "failed"
    assert run["error"].startswith("job type 'noop' is unknown or disabled (allowed: ")
    assert await db[RUNS].count_documents({"jobId": job.id}) == 1  # not retried


async def test_shutdown_lets_short_runs_finish_and_abandons_long_ones(
    db: Database, start_worker: StartWorker
) -> None:
    worker = await start_worker(shutdown_grace_seconds=1)
    slot = slot_in(1)
    short = await create_job(db, cron_at(slot), payload={"sleepSeconds": 0.5})
    long = await create_job(db, cron_at(slot), payload={"sleepSeconds": 30})

    async def both_started() -> bool:
        return await db[RUNS].count_documents({"status": "running"}) == 2

    await wait_for(both_started, 5, "both runs started")
    worker.request_stop()
    [done] = await finished_runs(db, short.id, 1)
    assert done["status"] == "succeeded"
    abandoned = (await finished_runs(db, long.id, 1))[0]
    assert (abandoned["status"], abandoned["error"]) == (
        "abandoned",
        RunReason.WORKER_SHUTDOWN.value,
    )
    retry = await wait_for_document(
        lambda: db[RUNS].find_one({"jobId": long.id, "status": "pending"}), 5, "retry queued"
    )
    assert retry["attempt"] == 2
    assert await db[RUNS].count_documents({"status": "running"}) == 0  # no lease left
    for job in (short, long):
        stored = await job_of(db, job.id)
        assert stored is not None
        assert stored["activeRunIds"] == []


async def test_the_worker_reports_its_heartbeat(db: Database, start_worker: StartWorker) -> None:
    worker = await start_worker(worker_name="beating")
    document = await wait_for_document(
        lambda: db[WORKERS].find_one({"_id": worker.worker_id}), 5, "heartbeat"
    )
    assert document["name"] == "beating"
    assert document["mode"] == "streams"
    assert document["runsInFlight"] == 0
    assert {"host", "pid", "version", "startedAt", "lastSeenAt"} <= document.keys()
    first = document["lastSeenAt"]
    await wait_for(
        lambda: db[WORKERS].find_one({"_id": worker.worker_id, "lastSeenAt": {"$gt": first}}),
        5,
        "a later heartbeat",
    )


async def test_a_handler_ignoring_cancellation_does_not_hold_up_the_shutdown(
    db: Database, settings: Settings
) -> None:
    async def stubborn(ctx: RunContext, payload: object) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(1)  # swallows the cancellation and carries on

    worker = Worker(
        worker_settings(settings, shutdown_grace_seconds=0.2), db, handlers={"noop": stubborn}
    )
    worker.cancel_wait_seconds = 0.2
    task = asyncio.create_task(worker.run())
    await create_job(db, cron_at(slot_in(1)))
    await wait_for(lambda: db[RUNS].count_documents({"status": "running"}), 5, "the run started")
    worker.request_stop()
    await asyncio.wait_for(task, 5)  # the run loop returns although the handler is still busy
    assert len(worker.stuck_handlers) == 1
    await asyncio.gather(*worker.stuck_handlers)
