"""Test runs and backfilled slots through the one claim path of an in-process worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from shared import backfill, jobs_repo
from shared.db import JOBS, RUNS, Database, Document
from shared.model import RunTrigger
from shared.runs import RunReason, manual_run, utc_now
from tests.integration.worker.conftest import StartWorker
from tests.integration.worker.factory import (
    FINAL,
    create_job,
    job_of,
    running_run,
    runs_of,
    wait_for,
    wait_for_document,
)

# The job's bookkeeping a test run must leave as it was.
BOOKKEEPING = (
    "status",
    "nextRunAt",
    "lastRunAt",
    "lastError",
    "lastDurationMs",
    "activeRunIds",
    "runCount",
    "failureCount",
    "version",
)
YEARLY = "0 0 6 1 1 *"


def bookkeeping(job: Document | None) -> dict[str, object]:
    assert job is not None
    return {name: job.get(name) for name in BOOKKEEPING}


async def test_a_test_run_runs_once_recorded_as_a_test_and_the_job_keeps_its_bookkeeping(
    db: Database, start_worker: StartWorker
) -> None:
    retry = {"maxAttempts": 2, "backoffSeconds": 0}
    job = await create_job(db, YEARLY, payload={"sleepSeconds": 1, "failAttempts": 1}, retry=retry)
    before = bookkeeping(await job_of(db, job.id))
    run_id = await jobs_repo.queue_run_now(db, job, trigger=RunTrigger.TEST)
    await start_worker()
    running = await wait_for_document(
        lambda: db[RUNS].find_one({"_id": run_id, "status": "running", "startedAt": {"$ne": None}}),
        10,
        "the test run to start",
    )
    # While it runs, the job does not list it and does not say `running`.
    assert bookkeeping(await job_of(db, job.id)) == before
    run = await wait_for_document(
        lambda: db[RUNS].find_one({"_id": run_id, "status": {"$in": list(FINAL)}}),
        10,
        "the test run to end",
    )
    assert (run["trigger"], run["status"], run["attempt"]) == ("test", "failed", 1)
    assert run["error"] == "deliberate failure of attempt 1"
    assert run["workerId"] == running["workerId"]
    # A run-now after it counts (its job writes follow the test run's in the finisher), and
    # only it does: its failed first attempt and its retry; the test run was neither counted
    # nor retried (attempts were left).
    manual_id = await jobs_repo.queue_run_now(db, job)
    stored = await wait_for_document(
        lambda: db[JOBS].find_one({"_id": job.id, "runCount": {"$gte": 2}}),
        15,
        "the run-now and its retry to be counted",
    )
    test, manual, retried = await runs_of(db, job.id)
    assert (test["_id"], manual["_id"]) == (run_id, manual_id)
    assert (retried["trigger"], retried["slot"], retried["status"]) == (
        "retry",
        manual["slot"],
        "succeeded",
    )
    assert (stored["runCount"], stored["failureCount"], stored["status"]) == (2, 1, "idle")
    assert stored["lastRunAt"] == retried["startedAt"]


async def test_a_test_run_of_a_paused_job_runs_and_the_job_stays_paused(
    db: Database, start_worker: StartWorker
) -> None:
    job = await create_job(db, YEARLY, enabled=False)
    before = bookkeeping(await job_of(db, job.id))
    run_id = await jobs_repo.queue_run_now(db, job, trigger=RunTrigger.TEST)
    await start_worker()
    run = await wait_for_document(
        lambda: db[RUNS].find_one({"_id": run_id, "status": {"$in": list(FINAL)}}),
        10,
        "the test run to end",
    )
    assert run["status"] == "succeeded"
    assert bookkeeping(await job_of(db, job.id)) == before


async def test_a_test_run_behind_a_run_in_progress_of_a_skip_job_is_skipped(
    db: Database, start_worker: StartWorker
) -> None:
    job = await create_job(db, YEARLY, overlapPolicy="skip")
    now = utc_now()
    busy = running_run(
        job,
        scheduled_for=datetime(2026, 1, 1, 6, tzinfo=UTC),
        worker_id="elsewhere:1:alive",
        lease_until=now + timedelta(minutes=5),
        started_at=now,
    )
    await db[RUNS].insert_one(busy)
    await db[JOBS].update_one({"_id": job.id}, {"$set": {"activeRunIds": [busy["_id"]]}})
    test = await db[RUNS].insert_one(manual_run(job, now=now, trigger=RunTrigger.TEST))
    await start_worker()
    run = await wait_for_document(
        lambda: db[RUNS].find_one({"_id": test.inserted_id, "status": {"$in": list(FINAL)}}),
        10,
        "the test run to be judged",
    )
    assert (run["status"], run["error"]) == ("skipped", RunReason.OVERLAP.value)


async def test_backfilled_slots_run_one_after_another_with_their_real_times(
    db: Database, start_worker: StartWorker
) -> None:
    # Overlap `skip`: the three slots are due together; they wait for each other, none skipped.
    job = await create_job(
        db, YEARLY, payload={"sleepSeconds": 0.3}, overlapPolicy="skip", retry={"backoffSeconds": 0}
    )
    before = await job_of(db, job.id)
    assert before is not None
    start = datetime(2023, 6, 1, tzinfo=UTC)
    slots = backfill.window_slots(
        jobs_repo.stored_schedule(job), start, datetime(2026, 6, 1, tzinfo=UTC), utc_now()
    )
    result = await backfill.queue_backfill(db, job, slots)
    assert (result.slots, result.queued) == (3, 3)
    await start_worker()

    async def all_done() -> list[Document]:
        runs = await runs_of(db, job.id)
        return runs if len(runs) == 3 and all(run["status"] in FINAL for run in runs) else []

    runs = await wait_for(all_done, 20, "three backfilled slots to run")
    assert [(run["trigger"], run["status"]) for run in runs] == [("backfill", "succeeded")] * 3
    assert [run["scheduledFor"] for run in runs] == [
        datetime(year, 1, 1, 6, tzinfo=UTC) for year in (2024, 2025, 2026)
    ]
    # Never two at once (overlap skip): each started after the previous one ended.
    by_start = sorted(runs, key=lambda run: run["startedAt"])
    for earlier, later in pairwise(by_start):
        assert later["startedAt"] >= earlier["endedAt"]
    stored = await wait_for_document(
        lambda: db[JOBS].find_one({"_id": job.id, "runCount": 3}), 10, "the job to count them"
    )
    assert stored["nextRunAt"] == before["nextRunAt"]
    assert (stored["status"], stored["activeRunIds"]) == ("idle", [])
    # Asked again once they ran: nothing is queued twice.
    again = await backfill.queue_backfill(db, job, slots)
    assert (again.queued, again.already_present) == (0, 3)
