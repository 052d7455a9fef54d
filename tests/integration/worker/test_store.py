"""The worker's queries against the server: duplicates, advances, finishes, leases."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

from bson import ObjectId

from shared import jobs_repo, runs
from shared.db import JOBS, RUNS, Database
from shared.model import JobStatus, RunStatus
from shared.runs import utc_now
from shared.settings import load_settings
from tests.integration.worker.factory import create_job, job_of, running_run
from worker.claiming import Claimed, Claimer
from worker.outcomes import Outcome, conclude
from worker.store import Advance, Start, WorkerStore


async def started(db: Database, store: WorkerStore, **options: Any) -> Claimed:
    """A job with one run started by `store`'s worker through the one start path."""
    job = await create_job(db, **options)
    await db[RUNS].insert_one(runs.manual_run(job, now=utc_now()))
    [item] = (await Claimer(store, load_settings({}), asyncio.Event()).claim(1)).claimed
    return item


async def test_a_second_record_of_the_same_slot_and_attempt_is_refused(db: Database) -> None:
    job = await create_job(db)
    now = utc_now()
    until = now + timedelta(seconds=30)
    first = running_run(job, scheduled_for=now, worker_id="w1", lease_until=until)
    twin = running_run(job, scheduled_for=now, worker_id="w2", lease_until=until)
    other = running_run(job, scheduled_for=now, worker_id="w2", lease_until=until, attempt=2)
    store = WorkerStore(db, "w2")
    assert await store.insert_runs([first]) == set()
    assert await store.insert_runs([twin, other]) == {0}
    assert await db[RUNS].count_documents({"jobId": job.id}) == 2


async def test_advances_only_move_forward_and_only_on_the_version_read(db: Database) -> None:
    job = await create_job(db)
    assert job.next_run_at is not None
    store = WorkerStore(db, "w1")
    later = job.next_run_at + timedelta(minutes=5)
    assert await store.advance_jobs([Advance(job.id, job.version, later)]) == 1
    await store.advance_jobs([Advance(job.id, job.version, job.next_run_at)])
    stored = await job_of(db, job.id)
    assert stored is not None
    assert stored["nextRunAt"] == later
    assert await store.advance_jobs([Advance(job.id, job.version + 1, later)]) == 0


async def test_a_start_of_a_skip_job_misses_while_a_run_is_active_or_after_an_edit(
    db: Database,
) -> None:
    store = WorkerStore(db, "w1")
    claimed = await started(db, store)
    assert await store.start_runs([Start(ObjectId(), claimed.job)]) == 0  # busy
    allow = await started(db, store, overlapPolicy="allow")
    assert await store.start_runs([Start(ObjectId(), allow.job)]) == 1
    await jobs_repo.set_enabled(db, allow.job_id, enabled=False)
    assert await store.start_runs([Start(ObjectId(), allow.job)]) == 0  # the version moved


async def test_finishing_sets_counters_status_and_is_written_once(db: Database) -> None:
    store = WorkerStore(db, "w1")
    claimed = await started(db, store)
    now = utc_now()
    outcome = conclude(claimed.run, claimed.job, RunStatus.SUCCEEDED, started_at=now, ended_at=now)
    await store.write_outcomes([outcome])
    await store.write_outcomes([outcome])  # a retried flush changes nothing more
    job = await job_of(db, claimed.job_id)
    assert job is not None
    assert job["status"] == JobStatus.IDLE.value
    assert (job["runCount"], job["failureCount"], job["activeRunIds"]) == (1, 0, [])
    assert job["lastRunAt"] == now
    run = await db[RUNS].find_one({"_id": claimed.run_id})
    assert run is not None
    assert run["status"] == "succeeded"
    assert run["leaseExpiresAt"] is None


async def test_a_paused_job_stays_paused_when_its_run_finishes(db: Database) -> None:
    store = WorkerStore(db, "w1")
    claimed = await started(db, store)
    await jobs_repo.set_enabled(db, claimed.job_id, enabled=False)
    now = utc_now()
    await store.write_outcomes(
        [
            conclude(
                claimed.run,
                claimed.job,
                RunStatus.FAILED,
                started_at=now,
                ended_at=now,
                error="boom",
            )
        ]
    )
    job = await job_of(db, claimed.job_id)
    assert job is not None
    assert job["status"] == JobStatus.PAUSED.value
    assert (job["lastError"], job["failureCount"], job["activeRunIds"]) == ("boom", 1, [])


async def test_status_stays_running_while_another_run_is_active(db: Database) -> None:
    store = WorkerStore(db, "w1")
    claimed = await started(db, store, overlapPolicy="allow")
    await db[JOBS].update_one({"_id": claimed.job_id}, {"$addToSet": {"activeRunIds": ObjectId()}})
    now = utc_now()
    await store.write_outcomes(
        [conclude(claimed.run, claimed.job, RunStatus.SUCCEEDED, started_at=now, ended_at=now)]
    )
    job = await job_of(db, claimed.job_id)
    assert job is not None
    assert job["status"] == JobStatus.RUNNING.value
    assert job["runCount"] == 1


async def test_a_job_deleted_during_its_run_is_not_recreated(db: Database) -> None:
    store = WorkerStore(db, "w1")
    claimed = await started(db, store)
    await jobs_repo.delete_job(db, claimed.job_id)
    now = utc_now()
    await store.write_outcomes(
        [conclude(claimed.run, claimed.job, RunStatus.SUCCEEDED, started_at=now, ended_at=now)]
    )
    assert await job_of(db, claimed.job_id) is None
    run = await db[RUNS].find_one({"_id": claimed.run_id})
    assert run is not None
    assert run["status"] == "succeeded"


async def test_a_late_finish_after_reaping_records_the_truth_and_counts_once(
    db: Database,
) -> None:
    store = WorkerStore(db, "w1")
    claimed = await started(db, store, retry={"maxAttempts": 2, "backoffSeconds": 0})
    await db[RUNS].update_one(
        {"_id": claimed.run_id}, {"$set": {"leaseExpiresAt": utc_now() - timedelta(seconds=1)}}
    )
    reaper = WorkerStore(db, "w2")
    [expired] = await reaper.reapable_runs(utc_now(), [], 10)
    assert await reaper.reap_run(expired, utc_now(), "lease expired", 10)
    assert not await reaper.reap_run(expired, utc_now(), "lease expired", 10)
    now = utc_now()
    abandoned = conclude(
        claimed.run, claimed.job, RunStatus.ABANDONED, started_at=now, ended_at=now
    )
    await reaper.write_outcomes([dataclasses.replace(abandoned, update_run=False, retry=None)])
    assert abandoned.retry is not None
    await reaper.insert_runs([abandoned.retry])
    # The cut-off worker comes back and reports that the handler did finish.
    late = await store.write_outcomes(
        [conclude(claimed.run, claimed.job, RunStatus.SUCCEEDED, started_at=now, ended_at=now)]
    )
    assert [outcome.run_id for outcome in late] == [claimed.run_id]
    run = await db[RUNS].find_one({"_id": claimed.run_id})
    assert run is not None
    assert run["status"] == "succeeded"
    job = await job_of(db, claimed.job_id)
    assert job is not None
    # Chaos finding 5: the abandonment the reaper counted is taken back, its retry withdrawn.
    assert (job["runCount"], job["failureCount"], job["activeRunIds"]) == (1, 0, [])
    assert await db[RUNS].find_one({"jobId": claimed.job_id, "attempt": 2}) is None


async def test_leases_are_renewed_only_for_our_running_runs(db: Database) -> None:
    mine, theirs = WorkerStore(db, "w1"), WorkerStore(db, "w2")
    first = await started(db, mine)
    second = await started(db, theirs)
    until = utc_now() + timedelta(minutes=10)
    assert await mine.extend_run_leases([first.run_id, second.run_id], until) == 1
    run = await db[RUNS].find_one({"_id": first.run_id})
    assert run is not None
    assert run["leaseExpiresAt"] == until


async def test_earliest_lookups_are_bounded(db: Database) -> None:
    store = WorkerStore(db, "w1")
    job = await create_job(db, "0 0 9 * * *")
    assert job.next_run_at is not None
    assert await store.earliest_job_time(job.next_run_at) is None
    assert await store.earliest_job_time(job.next_run_at + timedelta(seconds=1)) == job.next_run_at
    await create_job(db, "0 0 9 * * *", enabled=False)
    run_id = await jobs_repo.queue_run_now(db, job)
    queued = await db[RUNS].find_one({"_id": run_id})
    assert queued is not None
    assert (
        await store.earliest_pending_time(utc_now() + timedelta(seconds=1)) == queued["notBefore"]
    )
    assert await store.earliest_pending_time(queued["notBefore"]) is None


async def test_a_failed_attempt_queues_its_retry_once(db: Database) -> None:
    store = WorkerStore(db, "w1")
    claimed = await started(db, store, retry={"maxAttempts": 2, "backoffSeconds": 5})
    now = utc_now()
    outcome: Outcome = conclude(
        claimed.run, claimed.job, RunStatus.FAILED, started_at=now, ended_at=now, error="x"
    )
    await store.write_outcomes([outcome])
    await store.write_outcomes([outcome])
    retries = await db[RUNS].find({"jobId": claimed.job_id, "trigger": "retry"}).to_list()
    assert [(run["attempt"], run["status"]) for run in retries] == [(2, "pending")]
    # The first retry waits between backoffSeconds and twice it (jittered).
    wait = retries[0]["notBefore"] - now
    assert timedelta(seconds=5) <= wait <= timedelta(seconds=10)


async def test_an_edit_made_during_the_run_is_kept(db: Database) -> None:
    store = WorkerStore(db, "w1")
    claimed = await started(db, store)
    edited = await jobs_repo.update_job(
        db,
        claimed.job_id,
        lambda job: jobs_repo.JobSpec.of(job).replace(name="renamed", cron="0 0 7 * * *"),
    )
    now = utc_now()
    await store.write_outcomes(
        [conclude(claimed.run, claimed.job, RunStatus.SUCCEEDED, started_at=now, ended_at=now)]
    )
    job = await job_of(db, claimed.job_id)
    assert job is not None
    assert (job["name"], job["cron"], job["version"]) == ("renamed", "0 0 7 * * *", edited.version)
    assert job["nextRunAt"] == edited.next_run_at
    assert job["runCount"] == 1
