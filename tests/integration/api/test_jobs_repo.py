"""shared/jobs_repo.py as the admin CLI uses it: owner scoping, versions, pause/resume, run-now."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from bson import ObjectId

from shared import jobs_repo
from shared.db import JOBS, RUNS, Database
from shared.jobs_repo import JobSpec
from shared.model import JobOptions, JobStatus, OverlapPolicy

NOW = datetime(2026, 5, 4, 10, 0, 30, tzinfo=UTC)


def spec(name: str = "job", **changes: object) -> JobSpec:
    base = JobSpec(
        name=name,
        type="echo",
        cron="0 * * * *",
        timezone="UTC",
        payload={"message": "hi"},
        enabled=True,
        options=JobOptions(),
    )
    return base.replace(**changes)


async def test_create_get_and_owner_scope(db: Database) -> None:
    job = await jobs_repo.create_job(db, spec(), owner_id="alice", now=NOW)
    assert job.version == 1
    assert job.next_run_at == datetime(2026, 5, 4, 11, 0, tzinfo=UTC)
    assert await jobs_repo.get_job(db, job.id) == job
    assert await jobs_repo.get_job(db, job.id, "alice") == job
    assert await jobs_repo.get_job(db, job.id, "bob") is None
    with pytest.raises(jobs_repo.DuplicateJobNameError):
        await jobs_repo.create_job(db, spec(), owner_id="alice", now=NOW)
    with pytest.raises(jobs_repo.QuotaExceededError):
        await jobs_repo.create_job(db, spec("second"), owner_id="alice", max_jobs=1)


async def test_list_jobs_for_everyone_or_one_owner(db: Database) -> None:
    first = await jobs_repo.create_job(db, spec("a"), owner_id="alice")
    second = await jobs_repo.create_job(db, spec("b", enabled=False), owner_id="bob")
    assert [job.id for job in await jobs_repo.list_jobs(db, owner_id=None)] == [first.id, second.id]
    assert [job.id for job in await jobs_repo.list_jobs(db, owner_id="bob")] == [second.id]
    after_first = await jobs_repo.list_jobs(db, owner_id=None, after=first.id)
    assert [job.id for job in after_first] == [second.id]
    paused = await jobs_repo.list_jobs(db, owner_id=None, status=JobStatus.PAUSED)
    assert [job.id for job in paused] == [second.id]
    assert await jobs_repo.list_jobs(db, owner_id=None, enabled=True, job_type="noop") == []
    assert len(await jobs_repo.list_jobs(db, owner_id=None, limit=1)) == 1


async def test_set_enabled_pauses_resumes_and_checks_versions(db: Database) -> None:
    job = await jobs_repo.create_job(db, spec(), owner_id="alice", now=NOW)
    paused = await jobs_repo.set_enabled(db, job.id, enabled=False, now=NOW)
    assert (paused.enabled, paused.status, paused.next_run_at, paused.version) == (
        False,
        JobStatus.PAUSED,
        None,
        2,
    )
    again = await jobs_repo.set_enabled(db, job.id, enabled=False)
    assert again.version == 2  # already paused: nothing written
    with pytest.raises(jobs_repo.VersionConflictError) as conflict:
        await jobs_repo.set_enabled(db, job.id, enabled=True, expected_version=1)
    assert (conflict.value.expected, conflict.value.actual) == (1, 2)
    with pytest.raises(jobs_repo.JobNotFoundError):
        await jobs_repo.set_enabled(db, job.id, enabled=True, owner_id="bob")
    with pytest.raises(jobs_repo.JobNotFoundError):
        await jobs_repo.set_enabled(db, ObjectId(), enabled=True)
    later = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)
    resumed = await jobs_repo.set_enabled(db, job.id, enabled=True, expected_version=2, now=later)
    assert (resumed.status, resumed.next_run_at) == (
        JobStatus.IDLE,
        datetime(2026, 5, 4, 13, 0, tzinfo=UTC),
    )


async def test_api_writes_leave_worker_fields_alone(db: Database) -> None:
    job = await jobs_repo.create_job(db, spec(), owner_id="alice", now=NOW)
    run_id = ObjectId()
    worker_fields = {"activeRunIds": [run_id], "runCount": 7, "failureCount": 2, "lastError": "x"}
    await db[JOBS].update_one({"_id": job.id}, {"$set": worker_fields})
    await jobs_repo.update_job(db, job.id, lambda current: JobSpec.of(current).replace(name="new"))
    stored = await db[JOBS].find_one({"_id": job.id})
    assert stored is not None
    assert {key: stored[key] for key in worker_fields} == worker_fields
    assert stored["nextRunAt"] == job.next_run_at  # the schedule did not change


async def test_queue_run_now_and_overlap(db: Database) -> None:
    job = await jobs_repo.create_job(db, spec(), owner_id="alice")
    run_id = await jobs_repo.queue_run_now(db, job, now=NOW)
    run = await db[RUNS].find_one({"_id": run_id})
    assert run is not None
    assert (run["slot"], run["status"], run["trigger"]) == (f"manual:{run_id}", "pending", "manual")
    with pytest.raises(jobs_repo.RunInProgressError):
        await jobs_repo.queue_run_now(db, job)  # one queued manual run is enough under `skip`
    allowing = await jobs_repo.create_job(
        db, spec("allow", options=JobOptions(overlap_policy=OverlapPolicy.ALLOW)), owner_id="alice"
    )
    await jobs_repo.queue_run_now(db, allowing)
    await jobs_repo.queue_run_now(db, allowing)
    assert await db[RUNS].count_documents({"jobId": allowing.id}) == 2


async def test_run_now_reservation_lasts_while_its_run_is_pending_or_running(
    db: Database,
) -> None:
    job = await jobs_repo.create_job(db, spec(), owner_id="alice")
    first = await jobs_repo.queue_run_now(db, job)
    stored = await jobs_repo.get_job(db, job.id)
    assert stored is not None and stored.queued_run_id == first
    # Claimed but not yet in activeRunIds (the worker does that in a second write): still busy.
    await db[RUNS].update_one({"_id": first}, {"$set": {"status": "running"}})
    with pytest.raises(jobs_repo.RunInProgressError):
        await jobs_repo.queue_run_now(db, stored)
    # Finished: the reservation is stale, the next request replaces it (no worker write needed).
    await db[RUNS].update_one({"_id": first}, {"$set": {"status": "succeeded"}})
    second = await jobs_repo.queue_run_now(db, stored)  # `stored` is stale: re-read and retried
    assert (await db[JOBS].find_one({"_id": job.id}) or {})["queuedRunId"] == second


async def test_run_now_reservation_without_its_run(db: Database) -> None:
    job = await jobs_repo.create_job(db, spec(), owner_id="alice")
    # Just reserved, its run not inserted yet: busy.
    await db[JOBS].update_one({"_id": job.id}, {"$set": {"queuedRunId": ObjectId()}})
    with pytest.raises(jobs_repo.RunInProgressError):
        await jobs_repo.queue_run_now(db, job)
    # Left by a request that died between reserving and inserting: expires.
    abandoned = ObjectId.from_datetime(datetime.now(UTC) - 2 * jobs_repo.RESERVATION_GRACE)
    await db[JOBS].update_one({"_id": job.id}, {"$set": {"queuedRunId": abandoned}})
    run_id = await jobs_repo.queue_run_now(db, job)
    assert await db[RUNS].count_documents({"_id": run_id, "status": "pending"}) == 1


async def test_run_now_of_a_job_deleted_meanwhile_is_not_found(db: Database) -> None:
    job = await jobs_repo.create_job(db, spec(), owner_id="alice")
    await jobs_repo.delete_job(db, job.id)
    with pytest.raises(jobs_repo.JobNotFoundError):
        await jobs_repo.queue_run_now(db, job)
    assert await db[RUNS].count_documents({}) == 0


async def test_delete_with_version_and_pending_runs(db: Database) -> None:
    job = await jobs_repo.create_job(db, spec(), owner_id="alice")
    run_id = await jobs_repo.queue_run_now(db, job)
    with pytest.raises(jobs_repo.VersionConflictError):
        await jobs_repo.delete_job(db, job.id, expected_version=5)
    with pytest.raises(jobs_repo.JobNotFoundError):
        await jobs_repo.delete_job(db, job.id, owner_id="bob")
    deleted = await jobs_repo.delete_job(db, job.id, expected_version=1, now=NOW)
    assert deleted.id == job.id
    run = await db[RUNS].find_one({"_id": run_id})
    assert run is not None
    assert (run["status"], run["error"], run["endedAt"]) == ("skipped", "job deleted", NOW)
    with pytest.raises(jobs_repo.JobNotFoundError):
        await jobs_repo.delete_job(db, job.id)
